//! [`BlobFieldSpec`]: how one blob column of an entity behaves on save.
//!
//! The options mirror django-gcp's `BlobField`: store key, ingress prefix (`_tmp/`), overwrite mode,
//! maximum size, accepted content types, plus a delete policy for replaced, blanked and deleted-row
//! objects (django-gcp never deletes them), and the callbacks `get_destination_path`, `update_attributes`
//! and `on_change`.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use sea_orm::{ColumnTrait, EntityTrait, IdenStatic};

use super::value::BlobValue;
use crate::storage::{ObjectParameters, Store};
use crate::{Error, Result};

/// When a promotion may replace an existing object at its destination (django-gcp's `overwrite_mode`).
///
/// The `-versioned` forms allow it only when the bucket keeps noncurrent generations, so the replaced
/// bytes stay recoverable; the saver reads the bucket's real versioning state
/// ([`Store::versioning_enabled`]) rather than assuming it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OverwriteMode {
    /// Never overwrite (the default): the copy is create-only.
    #[default]
    Never,
    /// Only when updating a row.
    Update,
    /// Only when updating a row on a versioned bucket.
    UpdateVersioned,
    /// Only when adding a row.
    Add,
    /// Only when adding a row on a versioned bucket.
    AddVersioned,
    /// When adding or updating.
    AddUpdate,
    /// When adding or updating, on a versioned bucket.
    AddUpdateVersioned,
}

impl OverwriteMode {
    /// True for the `-versioned` forms.
    pub(crate) fn is_versioned(&self) -> bool {
        matches!(self, OverwriteMode::UpdateVersioned | OverwriteMode::AddVersioned | OverwriteMode::AddUpdateVersioned)
    }

    /// Whether the mode would allow overwriting for this operation if versioning were on: used to skip
    /// reading the bucket's versioning state when the answer cannot matter.
    pub fn applies(&self, adding: bool) -> bool {
        match self {
            OverwriteMode::Never => false,
            OverwriteMode::Update | OverwriteMode::UpdateVersioned => !adding,
            OverwriteMode::Add | OverwriteMode::AddVersioned => adding,
            OverwriteMode::AddUpdate | OverwriteMode::AddUpdateVersioned => true,
        }
    }

    /// django-gcp's `_get_allow_overwrite`: may this operation overwrite, given the bucket's versioning?
    pub fn allows(&self, adding: bool, versioning_enabled: bool) -> bool {
        self.applies(adding) && (!self.is_versioned() || versioning_enabled)
    }

    /// django-gcp's spelling (`never`, `update`, `update-versioned`, `add`, `add-versioned`,
    /// `add-update`, `add-update-versioned`).
    pub fn as_str(&self) -> &'static str {
        match self {
            OverwriteMode::Never => "never",
            OverwriteMode::Update => "update",
            OverwriteMode::UpdateVersioned => "update-versioned",
            OverwriteMode::Add => "add",
            OverwriteMode::AddVersioned => "add-versioned",
            OverwriteMode::AddUpdate => "add-update",
            OverwriteMode::AddUpdateVersioned => "add-update-versioned",
        }
    }
}

impl fmt::Display for OverwriteMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for OverwriteMode {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s.replace('_', "-").to_ascii_lowercase().as_str() {
            "never" => OverwriteMode::Never,
            "update" => OverwriteMode::Update,
            "update-versioned" => OverwriteMode::UpdateVersioned,
            "add" => OverwriteMode::Add,
            "add-versioned" => OverwriteMode::AddVersioned,
            "add-update" => OverwriteMode::AddUpdate,
            "add-update-versioned" => OverwriteMode::AddUpdateVersioned,
            other => {
                return Err(Error::InvalidArgument(format!(
                    "unknown overwrite mode `{other}`: use never, update, update-versioned, add, add-versioned, \
                     add-update or add-update-versioned"
                )));
            }
        })
    }
}

/// What happens to an object a row stops referencing (replaced, blanked, or its row deleted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeletePolicy {
    /// Leave it in the bucket (django-gcp's behaviour).
    #[default]
    Keep,
    /// Delete it after the commit that stopped referencing it (generation-matched, through the outbox).
    Delete,
}

/// What `get_destination_path` receives (django-gcp's keyword arguments).
#[derive(Clone)]
pub struct DestinationContext<M> {
    /// The model as saved so far: on insert, with its database-generated primary key.
    pub model: M,
    /// Table name.
    pub table: String,
    /// Column name.
    pub column: String,
    /// The uploaded file's name, as the user's browser gave it.
    pub original_name: String,
    /// The attributes `update_attributes` returned.
    pub attributes: ObjectParameters,
    /// The object the row references now (updates), if any.
    pub existing_path: Option<String>,
    /// The temporary (ingress) object being promoted.
    pub temporary_path: String,
    /// Whether the field's overwrite mode allows overwriting in this case.
    pub allow_overwrite: bool,
    /// True when the row is being inserted.
    pub adding: bool,
    /// The field's store.
    pub store: Arc<dyn Store>,
}

/// What `update_attributes` receives.
#[derive(Clone)]
pub struct AttributesContext<M> {
    /// The model as saved so far.
    pub model: M,
    /// Table name.
    pub table: String,
    /// Column name.
    pub column: String,
    /// The uploaded file's original name.
    pub original_name: String,
    /// The object the row references now (updates), if any.
    pub existing_path: Option<String>,
    /// The temporary (ingress) object being promoted.
    pub temporary_path: String,
    /// True when the row is being inserted.
    pub adding: bool,
}

/// What `on_change` receives, after the commit, once the new object is in place.
#[derive(Clone)]
pub struct ChangeEvent<M> {
    /// The saved model (for a row delete: the model as it was).
    pub model: M,
    /// Table name.
    pub table: String,
    /// Column name.
    pub column: String,
    /// The value before the save.
    pub old: Option<BlobValue>,
    /// The value after the save (`None`: blanked or row deleted).
    pub new: Option<BlobValue>,
}

/// `get_destination_path`: returns the destination name and whether overwriting it is allowed.
pub(crate) type DestinationFn<M> =
    Arc<dyn Fn(DestinationContext<M>) -> BoxFuture<'static, Result<(String, bool)>> + Send + Sync>;
/// `update_attributes`: returns the object parameters to set on the destination.
pub(crate) type AttributesFn<M> = Arc<dyn Fn(&AttributesContext<M>) -> Result<ObjectParameters> + Send + Sync>;
/// `on_change`: called after the commit.
pub(crate) type OnChangeFn<M> = Arc<dyn Fn(&ChangeEvent<M>) + Send + Sync>;

/// The spec of one blob column of entity `E`.
pub struct BlobFieldSpec<E: EntityTrait> {
    column: E::Column,
    store_key: String,
    ingress_prefix: String,
    overwrite_mode: OverwriteMode,
    max_size: Option<u64>,
    accept: Vec<String>,
    identify: Option<bool>,
    #[cfg(feature = "images")]
    analyze: bool,
    #[cfg(feature = "images")]
    max_pixels: u64,
    #[cfg(feature = "images")]
    variants: Vec<crate::images::Variant>,
    delete_policy: DeletePolicy,
    blank: bool,
    blank_set: bool,
    editable: bool,
    destination: Option<DestinationFn<E::Model>>,
    update_attributes: Option<AttributesFn<E::Model>>,
    on_change: Option<OnChangeFn<E::Model>>,
}

impl<E: EntityTrait> Clone for BlobFieldSpec<E> {
    fn clone(&self) -> Self {
        Self {
            column: self.column,
            store_key: self.store_key.clone(),
            ingress_prefix: self.ingress_prefix.clone(),
            overwrite_mode: self.overwrite_mode,
            max_size: self.max_size,
            accept: self.accept.clone(),
            identify: self.identify,
            #[cfg(feature = "images")]
            analyze: self.analyze,
            #[cfg(feature = "images")]
            max_pixels: self.max_pixels,
            #[cfg(feature = "images")]
            variants: self.variants.clone(),
            delete_policy: self.delete_policy,
            blank: self.blank,
            blank_set: self.blank_set,
            editable: self.editable,
            destination: self.destination.clone(),
            update_attributes: self.update_attributes.clone(),
            on_change: self.on_change.clone(),
        }
    }
}

impl<E: EntityTrait> fmt::Debug for BlobFieldSpec<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlobFieldSpec")
            .field("field", &self.field_name())
            .field("store_key", &self.store_key)
            .field("ingress_prefix", &self.ingress_prefix)
            .field("overwrite_mode", &self.overwrite_mode)
            .field("max_size", &self.max_size)
            .field("accept", &self.accept)
            .field("delete_policy", &self.delete_policy)
            .field("blank", &self.blank)
            .field("editable", &self.editable)
            .field("destination", &self.destination.is_some())
            .field("update_attributes", &self.update_attributes.is_some())
            .field("on_change", &self.on_change.is_some())
            .finish()
    }
}

impl<E: EntityTrait> BlobFieldSpec<E> {
    /// A field on `column` stored in the store named `store_key`, with django-gcp's defaults: ingress
    /// prefix `_tmp/`, overwrite mode never, no size limit, any content type, keep replaced objects,
    /// not blankable, editable, and the default destination `<table>/<column>/<uuid v7>/<safe name>`.
    /// The entity is inferred from the column (`BlobFieldSpec::new(document::Column::File, "media")`).
    pub fn new<C>(column: C, store_key: impl Into<String>) -> Self
    where
        C: ColumnTrait<EntityName = E>,
        E: EntityTrait<Column = C>,
    {
        Self {
            column,
            store_key: store_key.into(),
            ingress_prefix: "_tmp/".into(),
            overwrite_mode: OverwriteMode::Never,
            max_size: None,
            accept: Vec::new(),
            identify: None,
            #[cfg(feature = "images")]
            analyze: true,
            #[cfg(feature = "images")]
            max_pixels: super::analyze::DEFAULT_MAX_PIXELS,
            #[cfg(feature = "images")]
            variants: Vec::new(),
            delete_policy: DeletePolicy::Keep,
            blank: false,
            blank_set: false,
            editable: true,
            destination: None,
            update_attributes: None,
            on_change: None,
        }
    }

    /// Where uploads are ingressed before promotion (default `_tmp/`). Must be relative and end in `/`.
    pub fn ingress_prefix(mut self, prefix: impl Into<String>) -> Self {
        let mut p = prefix.into().trim_start_matches('/').to_string();
        if !p.is_empty() && !p.ends_with('/') {
            p.push('/');
        }
        self.ingress_prefix = p;
        self
    }

    /// The overwrite mode.
    pub fn overwrite_mode(mut self, mode: OverwriteMode) -> Self {
        self.overwrite_mode = mode;
        self
    }

    /// Refuse uploads larger than `bytes`.
    pub fn max_size(mut self, bytes: u64) -> Self {
        self.max_size = Some(bytes);
        self
    }

    /// Accept only these content types (`image/png`, `image/*`, `*/*`). Empty (the default): any.
    pub fn accept<I, S>(mut self, types: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.accept = types.into_iter().map(|t| t.into().to_ascii_lowercase()).collect();
        self
    }

    /// Read each upload's first bytes at promotion and refuse it when they contradict its declared type or
    /// the accept list (HTML or SVG sent as an image, a PNG sent as a JPEG, an image with a script
    /// appended); a generic declaration (`application/octet-stream`) takes the identified type. On by
    /// default for a field with an accept list (one more storage call per new upload, a ranged read of
    /// 4 KiB); `false` turns it off, `true` turns it on for a field that accepts anything.
    pub fn identify_type(mut self, on: bool) -> Self {
        self.identify = Some(on);
        self
    }

    /// Read each image upload's width and height (EXIF orientation applied) from its header at promotion
    /// and cache them in the [`BlobValue`](super::BlobValue), so a page can render `<img width height>`
    /// with no storage call; refuse images over [`max_pixels`](Self::max_pixels). On by default (feature
    /// `images`). The header comes from the same ranged read that identifies the type, made 64 KiB long
    /// (a second read of at most 1 MiB when a JPEG's header lies behind a larger EXIF block).
    #[cfg(feature = "images")]
    pub fn analyze_images(mut self, on: bool) -> Self {
        self.analyze = on;
        self
    }

    /// Refuse images with more pixels than this, before anything is decoded (default 100 megapixels): a few-kilobyte PNG can declare 50,000 x 50,000.
    #[cfg(feature = "images")]
    pub fn max_pixels(mut self, pixels: u64) -> Self {
        self.max_pixels = pixels;
        self
    }

    /// Make `variant` of every image saved in this field (feature `images`): after the save commits, a
    /// task enqueued in the save's own transaction writes it beside the original
    /// (`<name>.variants/<variant>-g<generation>.<ext>`) and records it in the row's value; it is deleted
    /// with the original. Needs the app handle with the `tasks` feature. See `docs/images.md`.
    #[cfg(feature = "images")]
    pub fn variant(mut self, variant: crate::images::Variant) -> Self {
        self.variants.retain(|v| v.name() != variant.name());
        self.variants.push(variant);
        self
    }

    /// What to do with replaced, blanked and deleted-row objects.
    pub fn delete_policy(mut self, policy: DeletePolicy) -> Self {
        self.delete_policy = policy;
        self
    }

    /// Delete the old object when the value is replaced or blanked, or its row deleted: shorthand for
    /// `delete_policy(DeletePolicy::Delete)` (the default keeps it, as django-gcp does).
    pub fn delete_replaced(self) -> Self {
        self.delete_policy(DeletePolicy::Delete)
    }

    /// Allow a blank value (SQL NULL; the column must be `Option<BlobValue>`).
    pub fn blank(mut self, allowed: bool) -> Self {
        self.blank = allowed;
        self.blank_set = true;
        self
    }

    /// Blank allowed exactly when the column is nullable (`Option<BlobValue>`), unless
    /// [`BlobFieldSpec::blank`] chose already. The registry ([`Blobs`](crate::Blobs)) applies this to
    /// every field it is given.
    pub fn blank_from_column(mut self) -> Self {
        if !self.blank_set {
            self.blank = self.column.def().is_null();
        }
        self
    }

    /// Whether updates may change the value (django's `editable`; a non-editable field is set on insert
    /// only).
    pub fn editable(mut self, editable: bool) -> Self {
        self.editable = editable;
        self
    }

    /// `get_destination_path` as a plain function. Return `Err(Error::Validation {..})` (see
    /// [`BlobFieldSpec::refuse`]) to refuse the save; the caller receives that error unchanged.
    pub fn destination<F>(mut self, f: F) -> Self
    where
        F: Fn(&DestinationContext<E::Model>) -> Result<(String, bool)> + Send + Sync + 'static,
    {
        self.destination = Some(Arc::new(move |ctx| {
            let out = f(&ctx);
            Box::pin(async move { out })
        }));
        self
    }

    /// `get_destination_path` as an async function (it may use `ctx.store`, e.g. to look for a free name).
    pub fn destination_async<F, Fut>(mut self, f: F) -> Self
    where
        F: Fn(DestinationContext<E::Model>) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<(String, bool)>> + Send + 'static,
    {
        self.destination = Some(Arc::new(move |ctx| Box::pin(f(ctx))));
        self
    }

    /// `update_attributes`: object parameters (content type, cache control, metadata, ...) set on the
    /// destination by the promoting copy.
    pub fn update_attributes<F>(mut self, f: F) -> Self
    where
        F: Fn(&AttributesContext<E::Model>) -> Result<ObjectParameters> + Send + Sync + 'static,
    {
        self.update_attributes = Some(Arc::new(f));
        self
    }

    /// `on_change`: called after the commit, once the new object is in place (not called by replay).
    pub fn on_change<F>(mut self, f: F) -> Self
    where
        F: Fn(&ChangeEvent<E::Model>) + Send + Sync + 'static,
    {
        self.on_change = Some(Arc::new(f));
        self
    }

    /// A validation error for this field, for callbacks that refuse a save.
    pub fn refuse(&self, message: impl Into<String>) -> Error {
        Error::Validation { field: self.field_name(), message: message.into() }
    }

    /// The column.
    pub fn column(&self) -> E::Column {
        self.column
    }

    /// The column's name.
    pub(crate) fn column_name(&self) -> &'static str {
        self.column.as_str()
    }

    /// `table.column`, as used in messages.
    pub(crate) fn field_name(&self) -> String {
        format!("{}.{}", E::default().table_name(), self.column.as_str())
    }

    /// The store key.
    pub(crate) fn store_key(&self) -> &str {
        &self.store_key
    }

    /// The ingress prefix.
    pub fn ingress(&self) -> &str {
        &self.ingress_prefix
    }

    /// The overwrite mode.
    pub fn mode(&self) -> OverwriteMode {
        self.overwrite_mode
    }

    /// The size limit.
    pub(crate) fn size_limit(&self) -> Option<u64> {
        self.max_size
    }

    /// The accepted content types (empty: any).
    pub fn accepted(&self) -> &[String] {
        &self.accept
    }

    /// The delete policy.
    pub fn policy(&self) -> DeletePolicy {
        self.delete_policy
    }

    /// Whether blank is allowed.
    pub(crate) fn is_blankable(&self) -> bool {
        self.blank
    }

    /// Whether updates may change the value.
    pub(crate) fn is_editable(&self) -> bool {
        self.editable
    }

    /// True when uploads are identified from their bytes ([`identify_type`](Self::identify_type)).
    pub(crate) fn identifies_type(&self) -> bool {
        self.identify.unwrap_or(!self.accept.is_empty())
    }

    /// The variants made of this field's images.
    #[cfg(feature = "images")]
    pub(crate) fn variants(&self) -> &[crate::images::Variant] {
        &self.variants
    }

    /// The pixel limit images are decoded under (analysis and variants).
    #[cfg(feature = "images")]
    pub(crate) fn pixel_limit(&self) -> u64 {
        self.max_pixels
    }

    /// The objects made from `value` besides itself: its recorded variants, and the names the declared
    /// variants of its generation would have (a variant written but not yet recorded), for deletion with
    /// the original.
    pub(crate) fn derived_objects(&self, value: &super::BlobValue) -> Vec<String> {
        let mut names: Vec<String> = value.variants.values().map(|v| v.name.clone()).collect();
        #[cfg(feature = "images")]
        if let Some(generation) = value.generation {
            names.extend(self.variants.iter().map(|v| v.object_name(&value.name, generation)));
        }
        names.sort();
        names.dedup();
        names
    }

    /// The pixel limit when image uploads are analysed ([`analyze_images`](Self::analyze_images)).
    pub(crate) fn image_pixel_limit(&self) -> Option<u64> {
        #[cfg(feature = "images")]
        {
            self.analyze.then_some(self.max_pixels)
        }
        #[cfg(not(feature = "images"))]
        {
            None
        }
    }

    /// Does `content_type` match the accepted list? It must parse strictly as one media type
    /// ([`media_type`](crate::storage::media_type)); parameters such as `; charset=` do not count.
    pub(crate) fn accepts_content_type(&self, content_type: &str) -> bool {
        crate::storage::media_type::accepts(&self.accept, content_type)
    }

    pub(crate) fn destination_fn(&self) -> Option<&DestinationFn<E::Model>> {
        self.destination.as_ref()
    }

    pub(crate) fn attributes_fn(&self) -> Option<&AttributesFn<E::Model>> {
        self.update_attributes.as_ref()
    }

    pub(crate) fn on_change_fn(&self) -> Option<&OnChangeFn<E::Model>> {
        self.on_change.as_ref()
    }
}

/// The default destination: `<table>/<column>/<uuid v7>/<safe original name>`, never colliding.
pub(crate) fn default_destination<M>(ctx: &DestinationContext<M>) -> String {
    format!("{}/{}/{}/{}", ctx.table, ctx.column, uuid::Uuid::now_v7(), safe_file_name(&ctx.original_name))
}

/// The last path segment of `name`, with anything but letters, digits, `.`, `-` and `_` replaced by `_`;
/// `file` when nothing is left.
pub fn safe_file_name(name: &str) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String = last
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') { c } else { '_' })
        .take(200)
        .collect();
    let trimmed = cleaned.trim_matches('.');
    if trimmed.is_empty() { "file".into() } else { trimmed.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overwrite_modes_follow_django_gcp() {
        use OverwriteMode::*;
        let table = [
            (Never, [false, false, false, false]),
            (Update, [false, true, false, true]),
            (UpdateVersioned, [false, false, false, true]),
            (Add, [true, false, true, false]),
            (AddVersioned, [false, false, true, false]),
            (AddUpdate, [true, true, true, true]),
            (AddUpdateVersioned, [false, false, true, true]),
        ];
        for (mode, want) in table {
            let got = [
                mode.allows(true, false),
                mode.allows(false, false),
                mode.allows(true, true),
                mode.allows(false, true),
            ];
            assert_eq!(got, want, "{mode}");
            assert_eq!(mode.as_str().parse::<OverwriteMode>().unwrap(), mode);
        }
        assert!("sometimes".parse::<OverwriteMode>().is_err());
    }

    #[test]
    fn safe_names() {
        assert_eq!(safe_file_name("C:\\docs\\Q3 report (final).pdf"), "Q3_report__final_.pdf");
        assert_eq!(safe_file_name("../../etc/passwd"), "passwd");
        assert_eq!(safe_file_name(".."), "file");
    }
}
