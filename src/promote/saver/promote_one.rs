//! Promote one upload inside the caller's transaction: choose the destination, claim the temporary
//! object (checking size and content type), then copy it create-only (or defer an allowed overwrite).

use std::sync::Arc;

use sea_orm::{ActiveModelBehavior, ActiveModelTrait, EntityTrait, IntoActiveModel};

use super::BlobSaver;
use super::state::{CopyState, FieldPlan};
use crate::field::spec::default_destination;
use crate::field::{
    AttributesContext, BlobFieldSpec, BlobValue, DeletePolicy, DestinationContext, OverwriteMode, PendingUpload,
};
use crate::promote::outbox::{Intent, ObjectRef};
use crate::promote::steps::{self, TAG_INTENT};
use crate::storage::{GetOptions, ObjectMeta, ObjectParameters, Store, naming};
use crate::{Error, Result, SaveStep};

/// Where an upload goes, with what attributes, and whether an existing object there may be replaced.
struct Target {
    destination: String,
    attributes: ObjectParameters,
    allow_overwrite: bool,
    mode: OverwriteMode,
    versioning: bool,
    adding: bool,
}

/// Promote one upload (see [`BlobSave::apply`](super::BlobSave::apply)).
pub(super) async fn promote_one<E>(
    saver: &BlobSaver<E>,
    spec: &BlobFieldSpec<E>,
    store: &Arc<dyn Store>,
    plan: &mut FieldPlan<E>,
    upload: &PendingUpload,
    row: &E::Model,
    adding: bool,
) -> Result<()>
where
    E: EntityTrait,
    E::Model: IntoActiveModel<E::ActiveModel> + Sync,
    E::ActiveModel: ActiveModelTrait<Entity = E> + ActiveModelBehavior + Send,
{
    let temp =
        plan.intent.as_ref().and_then(|i| i.temp_name.clone()).expect("attach intents name their temporary object");
    let mut target = target(saver, spec, store, plan, upload, row, adding, &temp).await?;
    let intent = plan.intent.as_mut().expect("attach plans have an intent");
    let temp_meta = claim(spec, store.as_ref(), intent, &temp, &target).await?;
    let inspected = inspect(spec, store.as_ref(), &temp, &temp_meta, &target).await?;
    if let Some(identified) = inspected.identified {
        // A generic declaration takes the type the bytes have: the copy writes it on the object.
        target.attributes.content_type = Some(identified);
    }
    plan.copy = CopyState::Attempted(target.destination.clone());
    let outcome = copy(spec, store.as_ref(), intent, &temp, &temp_meta, &target).await;
    let dest = target.destination.clone();
    match outcome? {
        Copied::Created(meta) => {
            let mut value = BlobValue::from_meta(&meta, Some(upload.original_name.clone()));
            value.set_dimensions(inspected.dimensions);
            plan.new = Some(value);
            intent.dest_generation = Some(meta.generation);
            plan.copy = CopyState::Copied(dest.clone(), meta.generation);
        }
        Copied::Deferred => {
            let mut value = deferred_value(&temp_meta, &target, upload);
            value.set_dimensions(inspected.dimensions);
            plan.new = Some(value);
            intent.overwrite = true;
            intent.attributes = Some(target.attributes);
            plan.copy = CopyState::Deferred(dest.clone());
        }
        Copied::Refused(message) => {
            plan.copy = CopyState::NotAttempted;
            return Err(refusal(spec, message));
        }
    }
    intent.destination = Some(dest.clone());
    if let Some(old) = plan.old.as_ref().filter(|_| spec.policy() == DeletePolicy::Delete) {
        if old.name != dest {
            intent.obsolete.push(ObjectRef { name: old.name.clone(), generation: old.generation });
        }
        // The old generation's variants go with it, even when the new object took the same name.
        intent.obsolete.extend(spec.derived_objects(old).into_iter().map(|name| ObjectRef { name, generation: None }));
    }
    Ok(())
}

fn refusal<E: EntityTrait>(spec: &BlobFieldSpec<E>, message: String) -> Error {
    Error::Validation { field: spec.field_name(), message }
}

/// The overwrite decision (reading the bucket's versioning only when it can matter), the attributes and
/// the destination from the field's hooks.
#[allow(clippy::too_many_arguments)]
async fn target<E>(
    saver: &BlobSaver<E>,
    spec: &BlobFieldSpec<E>,
    store: &Arc<dyn Store>,
    plan: &FieldPlan<E>,
    upload: &PendingUpload,
    row: &E::Model,
    adding: bool,
    temp: &str,
) -> Result<Target>
where
    E: EntityTrait,
    E::Model: IntoActiveModel<E::ActiveModel> + Sync,
    E::ActiveModel: ActiveModelTrait<Entity = E> + ActiveModelBehavior + Send,
{
    let (table, column) = (BlobSaver::<E>::table().to_string(), spec.column_name().to_string());
    let mode = spec.mode();
    let versioning =
        if mode.is_versioned() && mode.applies(adding) { saver.versioning(store.as_ref()).await? } else { false };
    let allow = mode.allows(adding, versioning);
    let existing_path = plan.old.as_ref().map(|v| v.name.clone());
    let attributes = match spec.attributes_fn() {
        Some(f) => f(&AttributesContext {
            model: row.clone(),
            table: table.clone(),
            column: column.clone(),
            original_name: upload.original_name.clone(),
            existing_path: existing_path.clone(),
            temporary_path: temp.to_string(),
            adding,
        })?,
        None => ObjectParameters::default(),
    };
    let ctx = DestinationContext {
        model: row.clone(),
        table,
        column,
        original_name: upload.original_name.clone(),
        attributes: attributes.clone(),
        existing_path,
        temporary_path: temp.to_string(),
        allow_overwrite: allow,
        adding,
        store: store.clone(),
    };
    let (destination, allow_overwrite) = match spec.destination_fn() {
        Some(f) => f(ctx).await?,
        None => (default_destination(&ctx), allow),
    };
    let destination = naming::normalize(&destination)
        .map_err(|e| refusal(spec, format!("get_destination_path returned an invalid object name: {e}")))?;
    if !spec.ingress().is_empty() && destination.starts_with(spec.ingress()) {
        return Err(refusal(
            spec,
            format!(
                "get_destination_path returned `{destination}`, inside the ingress prefix `{}`; return a permanent location",
                spec.ingress()
            ),
        ));
    }
    Ok(Target { destination, attributes, allow_overwrite, mode, versioning, adding })
}

/// Claim the temporary object (the head step: records the destination on it) and check its size and
/// content type against the field.
async fn claim<E: EntityTrait>(
    spec: &BlobFieldSpec<E>,
    store: &dyn Store,
    intent: &mut Intent,
    temp: &str,
    target: &Target,
) -> Result<ObjectMeta> {
    let claimed = steps::claim(store, temp, intent.temp_generation, &intent.id, &target.destination).await;
    let meta = claimed.map_err(|e| match e {
        Error::NotFound { .. } => refusal(
            spec,
            format!(
                "upload incomplete or failed: no object `{temp}` in store `{}`; upload the file again",
                spec.store_key()
            ),
        ),
        Error::Precondition { .. } => refusal(
            spec,
            format!(
                "the upload `{temp}` was replaced after it was issued (generation mismatch); upload the file again"
            ),
        ),
        other => other.at_step(SaveStep::Claim, spec.field_name()),
    })?;
    intent.temp_generation = Some(meta.generation);
    if let Some(max) = spec.size_limit()
        && meta.size > max
    {
        return Err(refusal(spec, format!("the upload is {} bytes; at most {max} bytes are allowed", meta.size)));
    }
    let content_type = declared_type(target, &meta);
    // A generic declaration on an identifying field is judged by the type its bytes have.
    let judged_by_bytes = spec.identifies_type() && crate::field::sniff::is_generic(&content_type);
    if !judged_by_bytes && !spec.accepts_content_type(&content_type) {
        return Err(refusal(
            spec,
            format!("content type `{content_type}` is not accepted; accepted: {}", spec.accepted().join(", ")),
        ));
    }
    Ok(meta)
}

/// What an upload's first bytes said.
#[derive(Default)]
struct Inspected {
    /// The type the bytes have, when the declaration was generic.
    identified: Option<String>,
    /// Width and height as displayed, for an analysed image.
    dimensions: Option<(u32, u32)>,
}

/// Read the claimed upload's first bytes (one ranged read of its generation; a second, bounded one only
/// for an image header behind a large EXIF block), check them against the declared type and the accept
/// list, and read an image's dimensions. Nothing is read when the field neither identifies types nor
/// analyses images (or the upload is declared as something other than an image).
async fn inspect<E: EntityTrait>(
    spec: &BlobFieldSpec<E>,
    store: &dyn Store,
    temp: &str,
    meta: &ObjectMeta,
    target: &Target,
) -> Result<Inspected> {
    use crate::field::sniff;
    let declared = declared_type(target, meta);
    let pixel_limit = spec.image_pixel_limit();
    let may_be_image = declared.starts_with("image/") || sniff::is_generic(&declared);
    let analyses = pixel_limit.is_some() && (may_be_image || spec.identifies_type());
    if !spec.identifies_type() && !analyses {
        return Ok(Inspected::default());
    }
    let first = if analyses { image_bytes::FIRST } else { sniff::SNIFF_BYTES };
    let bytes = read_head(spec, store, temp, meta, first).await?;
    let mut inspected = Inspected::default();
    if spec.identifies_type() {
        let sniffed = sniff::sniff(&bytes[..bytes.len().min(sniff::SNIFF_BYTES as usize)]);
        inspected.identified =
            sniff::check(&declared, &sniffed, |t| spec.accepts_content_type(t)).map_err(|why| refusal(spec, why))?;
    }
    if let (true, Some(limit)) = (analyses, pixel_limit) {
        inspected.dimensions = image_bytes::dimensions(spec, store, temp, meta, bytes, limit).await?;
    }
    Ok(inspected)
}

/// One ranged read of the first `len` bytes of the claimed generation.
async fn read_head<E: EntityTrait>(
    spec: &BlobFieldSpec<E>,
    store: &dyn Store,
    temp: &str,
    meta: &ObjectMeta,
    len: u64,
) -> Result<bytes::Bytes> {
    let options = GetOptions { generation: Some(meta.generation), ..GetOptions::default() }
        .with_range(0..len.min(meta.size.max(1)));
    let head = async { store.get(temp, options).await?.bytes().await };
    head.await.map_err(|e| e.at_step(SaveStep::Claim, spec.field_name()))
}

#[cfg(feature = "images")]
mod image_bytes {
    use super::*;
    use crate::field::analyze::{ANALYSIS_BYTES, Analysis, MAX_HEADER_BYTES, analyze};

    pub(super) const FIRST: u64 = ANALYSIS_BYTES;

    /// The displayed dimensions of an image upload, or `None` for other files; a bomb or an unreadable
    /// header is refused.
    pub(super) async fn dimensions<E: EntityTrait>(
        spec: &BlobFieldSpec<E>,
        store: &dyn Store,
        temp: &str,
        meta: &ObjectMeta,
        bytes: bytes::Bytes,
        limit: u64,
    ) -> Result<Option<(u32, u32)>> {
        let whole = bytes.len() as u64 >= meta.size;
        let analysis = match analyze(&bytes, whole, limit).map_err(|why| refusal(spec, why))? {
            Analysis::NeedMore => {
                let more = read_head(spec, store, temp, meta, MAX_HEADER_BYTES).await?;
                let whole = more.len() as u64 >= meta.size;
                match analyze(&more, whole, limit).map_err(|why| refusal(spec, why))? {
                    Analysis::NeedMore => {
                        return Err(refusal(
                            spec,
                            format!(
                                "the image's header was not found in its first {} KiB; save it without the \
                                 oversized metadata block",
                                MAX_HEADER_BYTES / 1024
                            ),
                        ));
                    }
                    other => other,
                }
            }
            other => other,
        };
        Ok(match analysis {
            Analysis::Image(d) => Some((d.width, d.height)),
            _ => None,
        })
    }
}

#[cfg(not(feature = "images"))]
mod image_bytes {
    use super::*;

    pub(super) const FIRST: u64 = crate::field::sniff::SNIFF_BYTES;

    /// Without the `images` feature nothing is analysed.
    pub(super) async fn dimensions<E: EntityTrait>(
        _: &BlobFieldSpec<E>,
        _: &dyn Store,
        _: &str,
        _: &ObjectMeta,
        _: bytes::Bytes,
        _: u64,
    ) -> Result<Option<(u32, u32)>> {
        Ok(None)
    }
}

/// The type the upload was declared with (the attributes hook's, else the object's).
fn declared_type(target: &Target, meta: &ObjectMeta) -> String {
    target
        .attributes
        .content_type
        .clone()
        .or_else(|| meta.content_type.clone())
        .unwrap_or_else(|| "application/octet-stream".into())
}

/// What the promoting copy did.
enum Copied {
    /// The destination was created.
    Created(Box<ObjectMeta>),
    /// The destination exists and may be replaced: the overwrite is made after the commit.
    Deferred,
    /// The destination exists and may not be replaced (the message says why).
    Refused(String),
}

/// Copy create-only, tagged with the intent. An allowed overwrite of an existing object is deferred to
/// after the commit: it could not be undone on an unversioned bucket. The claimed temporary object
/// carries the intent's tag and the copy inherits it; attributes are laid over it only when there are
/// some (on GCS that costs a read of the source inside the copy).
async fn copy<E: EntityTrait>(
    spec: &BlobFieldSpec<E>,
    store: &dyn Store,
    intent: &Intent,
    temp: &str,
    temp_meta: &ObjectMeta,
    target: &Target,
) -> Result<Copied> {
    let dest = &target.destination;
    let params = (target.attributes != ObjectParameters::default()).then(|| {
        let mut p = target.attributes.clone();
        p.metadata.insert(TAG_INTENT.into(), intent.id.clone());
        p
    });
    let source = (temp_meta.generation, temp_meta.known_metageneration());
    let copied = match steps::copy(store, temp, source, dest, params, Some(0)).await {
        // 412 from a retry whose first attempt made the copy (its answer was lost): the destination
        // carries this intent's tag, so the copy succeeded. Only this intent writes that tag.
        Err(e @ Error::Precondition { .. }) if matches!(&e, Error::Precondition { name, .. } if name == dest) => {
            match steps::created_by(store, dest, &intent.id).await {
                Ok(Some(meta)) => Ok(meta),
                Ok(None) => Err(e),
                Err(other) => return Err(other.at_step(SaveStep::Copy, spec.field_name())),
            }
        }
        other => other,
    };
    match copied {
        Ok(meta) => Ok(Copied::Created(Box::new(meta))),
        Err(Error::Precondition { name, .. }) if name == *dest && target.allow_overwrite => Ok(Copied::Deferred),
        Err(Error::Precondition { name, .. }) if name == *dest => {
            let case = if target.adding { "adding a row" } else { "updating a row" };
            let hint = if target.mode.is_versioned() && !target.versioning {
                " (the bucket has no object versioning)"
            } else {
                ""
            };
            Ok(Copied::Refused(format!(
                "an object already exists at `{dest}` and overwrite mode `{}` does not allow replacing it when \
                 {case}{hint}; return another path from get_destination_path",
                target.mode
            )))
        }
        Err(e) => Err(e.at_step(SaveStep::Copy, spec.field_name())),
    }
}

/// The value cached in the row for a deferred overwrite: the temporary object's metadata at the
/// destination, without a generation until the overwrite is made.
fn deferred_value(temp_meta: &ObjectMeta, target: &Target, upload: &PendingUpload) -> BlobValue {
    let mut value = BlobValue::from_meta(temp_meta, Some(upload.original_name.clone()));
    value.name = target.destination.clone();
    value.generation = None;
    value.metageneration = None;
    value.updated = None;
    if target.attributes.content_type.is_some() {
        value.content_type = target.attributes.content_type.clone();
    }
    value.metadata.extend(crate::field::value::user_metadata(&target.attributes.metadata));
    value
}
