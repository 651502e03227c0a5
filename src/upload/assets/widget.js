/*
 * sea-gcp direct-upload widget. Plain JavaScript, no build step, no framework.
 *
 * Enhances every <input type="file" data-sea-gcp-field="entity.column" name="..."> on the page:
 *   - asks POST <endpoint> for a ticket ({field, filename, size, content_type});
 *   - sends the bytes straight to the storage with XMLHttpRequest (progress events), as one signed
 *     PUT or, for large files, in Content-Range chunks to a resumable session (resumed after a failure
 *     or a cancel by asking the session what it has: "Content-Range: bytes *\/<size>");
 *   - puts the ticket into a hidden input named after the field: the form posts the ticket, never a
 *     path, and never the file's bytes.
 *
 * Attributes on the input:
 *   data-sea-gcp-field      entity.column (required)
 *   data-sea-gcp-endpoint   ticket URL (default: the directory this script was served from)
 *   data-max-size           size limit in bytes, checked before uploading (the server checks again)
 *   accept                  accepted types (image/*, .pdf, text/plain), checked before uploading
 *   data-blank              present when the field may be cleared
 *   data-current            name of the file the field holds now (enables Clear / Replace wording)
 *   data-ticket             a ticket of a finished upload (a form re-shown after a refused save): the
 *                           widget starts as uploaded and posts it again, no second upload needed
 *   data-ticket-name        that upload's file name
 *   data-preview-url        an image URL to show for the current file (a thumbnail variant, say)
 *
 * A chosen image (JPEG, PNG, GIF, WebP, AVIF) is shown at once, from the browser's own copy of the file,
 * before the upload finishes and before the form is saved; the preview goes when the file is cleared or
 * replaced by one that is not an image.
 *
 * A form with an enhanced input is submitted once: while its submission is in flight, a second submit
 * is ignored and its submit buttons are disabled (enabled again when the page is shown from the
 * browser's back/forward cache).
 *
 * Events dispatched on the input: sea-gcp:progress {loaded, total}, sea-gcp:done {ticket},
 * sea-gcp:error {message}. The widget's root element carries data-state =
 * idle | uploading | done | error | cancelled | cleared.
 */
(function () {
  "use strict";

  var scriptEndpoint = (function () {
    var s = document.currentScript;
    if (!s || !s.src) return "/uploads";
    return s.src.replace(/\/widget\.js(\?.*)?$/, "");
  })();

  function formatBytes(n) {
    if (n < 1024) return n + " B";
    var units = ["KiB", "MiB", "GiB", "TiB"];
    var v = n;
    var i = -1;
    do {
      v /= 1024;
      i++;
    } while (v >= 1024 && i < units.length - 1);
    return v.toFixed(v < 10 ? 1 : 0) + " " + units[i];
  }

  function typeMatches(pattern, file) {
    pattern = pattern.trim().toLowerCase();
    if (!pattern) return true;
    var type = (file.type || "").toLowerCase();
    if (pattern.charAt(0) === ".") {
      return file.name.toLowerCase().slice(-pattern.length) === pattern;
    }
    if (!type) return true; // unknown to the browser: the server guesses and decides
    if (pattern === "*/*") return true;
    var p = pattern.split("/");
    var t = type.split(";")[0].split("/");
    return (p[0] === "*" || p[0] === t[0]) && (p[1] === "*" || p[1] === t[1]);
  }

  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    for (var k in attrs) {
      if (Object.prototype.hasOwnProperty.call(attrs, k)) e.setAttribute(k, attrs[k]);
    }
    if (text) e.textContent = text;
    return e;
  }

  var counter = 0;

  function Widget(input) {
    this.input = input;
    this.field = input.getAttribute("data-sea-gcp-field");
    this.endpoint = input.getAttribute("data-sea-gcp-endpoint") || scriptEndpoint;
    this.maxSize = parseInt(input.getAttribute("data-max-size") || "0", 10) || 0;
    this.blank = input.hasAttribute("data-blank");
    this.current = input.getAttribute("data-current") || "";
    this.name = input.getAttribute("name") || this.field;
    this.required = input.required;
    this.keptTicket = input.getAttribute("data-ticket") || "";
    this.keptName = input.getAttribute("data-ticket-name") || "";
    this.previewUrl = input.getAttribute("data-preview-url") || "";
    this.objectUrl = null; // the blob: URL of the chosen file's preview, revoked when replaced
    this.xhr = null;
    this.file = null;
    this.grant = null; // the ticket answer of the current upload
    this.offset = 0;
    this.busy = false;
    this.build();
  }

  Widget.prototype.build = function () {
    var id = "sea-gcp-" + ++counter;
    var input = this.input;
    // The file's bytes never go with the form: the file input loses its name, a hidden input takes it.
    input.removeAttribute("name");
    input.required = false;
    if (!input.id) input.id = id + "-input";
    this.hidden = el("input", { type: "hidden", name: this.name, value: "" });
    this.hidden.setAttribute("data-sea-gcp-ticket", this.field);
    this.clearInput = el("input", { type: "hidden", name: this.name + "__clear", value: "" });

    this.root = el("div", { class: "sea-gcp-upload", "data-state": "idle", "data-field": this.field });
    input.parentNode.insertBefore(this.root, input);
    this.root.appendChild(input);
    this.root.appendChild(this.hidden);
    if (this.blank) this.root.appendChild(this.clearInput);

    this.status = el("div", { class: "sea-gcp-status", id: id + "-status", role: "status", "aria-live": "polite" });
    this.status.textContent = this.current ? "Current file: " + this.current : "No file chosen.";
    input.setAttribute("aria-describedby", id + "-status");

    this.progress = el("progress", { class: "sea-gcp-progress", max: "100", value: "0", "aria-label": "Upload progress" });
    this.progress.hidden = true;

    var bar = el("div", { class: "sea-gcp-actions" });
    this.cancelBtn = el("button", { type: "button", class: "sea-gcp-cancel", "aria-label": "Cancel upload" }, "Cancel");
    this.retryBtn = el("button", { type: "button", class: "sea-gcp-retry", "aria-label": "Retry upload" }, "Retry");
    this.replaceBtn = el("button", { type: "button", class: "sea-gcp-replace", "aria-label": "Replace file" }, "Replace");
    this.clearBtn = el("button", { type: "button", class: "sea-gcp-clear", "aria-label": "Clear file" }, "Clear");
    [this.cancelBtn, this.retryBtn, this.replaceBtn, this.clearBtn].forEach(function (b) {
      b.hidden = true;
      bar.appendChild(b);
    });
    // Messages that must stay visible while progress updates rewrite the status line.
    this.notice = el("div", { class: "sea-gcp-notice", role: "alert", "aria-live": "assertive" });
    this.notice.hidden = true;
    this.preview = el("img", { class: "sea-gcp-preview", alt: "" });
    this.preview.hidden = true;
    this.root.appendChild(this.preview);
    if (this.previewUrl && this.current) this.showPreview(this.previewUrl, this.current);
    this.root.appendChild(this.progress);
    this.root.appendChild(this.status);
    this.root.appendChild(this.notice);
    this.root.appendChild(bar);

    var self = this;
    input.addEventListener("change", function () {
      if (input.files && input.files.length) self.start(input.files[0]);
    });
    this.cancelBtn.addEventListener("click", function () { self.cancel(); });
    this.retryBtn.addEventListener("click", function () { self.retry(); });
    this.replaceBtn.addEventListener("click", function () { input.click(); });
    this.clearBtn.addEventListener("click", function () { self.clear(); });
    if (this.keptTicket) {
      this.hidden.value = this.keptTicket;
      this.current = this.keptName || "the uploaded file";
      this.setState("done", "Uploaded " + this.current + ". Save the form to keep it.");
    } else {
      this.refreshButtons("idle");
    }
  };

  /* Raster images a browser shows in an <img> (SVG is left out: it is markup). */
  var PREVIEWABLE = /^image\/(jpeg|png|gif|webp|avif|bmp)$/;

  Widget.prototype.showPreview = function (url, name) {
    this.preview.src = url;
    this.preview.alt = "Preview of " + name;
    this.preview.hidden = false;
  };

  Widget.prototype.hidePreview = function () {
    if (this.objectUrl) URL.revokeObjectURL(this.objectUrl);
    this.objectUrl = null;
    this.preview.hidden = true;
    this.preview.removeAttribute("src");
    this.preview.alt = "";
  };

  Widget.prototype.previewFile = function (file) {
    this.hidePreview();
    if (!PREVIEWABLE.test(file.type || "") || !window.URL || !URL.createObjectURL) return;
    this.objectUrl = URL.createObjectURL(file);
    this.showPreview(this.objectUrl, file.name);
  };

  Widget.prototype.showNotice = function (message) {
    this.notice.textContent = message;
    this.notice.hidden = !message;
  };

  Widget.prototype.setState = function (state, message, isError) {
    this.root.setAttribute("data-state", state);
    this.status.textContent = message;
    this.status.setAttribute("role", isError ? "alert" : "status");
    this.status.classList.toggle("sea-gcp-error", !!isError);
    this.refreshButtons(state);
  };

  Widget.prototype.refreshButtons = function (state) {
    var hasFile = state === "done" || (state === "idle" && !!this.current);
    this.cancelBtn.hidden = state !== "uploading";
    this.retryBtn.hidden = !((state === "error" || state === "cancelled") && this.file);
    this.retryBtn.textContent = this.grant && this.grant.resumable && this.offset > 0 ? "Resume" : "Retry";
    this.retryBtn.setAttribute("aria-label", this.retryBtn.textContent + " upload");
    this.replaceBtn.hidden = !hasFile;
    this.clearBtn.hidden = !(this.blank && (hasFile || state === "error" || state === "cancelled"));
    this.input.hidden = hasFile;
  };

  Widget.prototype.emit = function (name, detail) {
    this.input.dispatchEvent(new CustomEvent("sea-gcp:" + name, { bubbles: true, detail: detail }));
  };

  Widget.prototype.fail = function (message) {
    this.showNotice("");
    this.busy = false;
    this.xhr = null;
    this.progress.hidden = true;
    this.hidden.value = "";
    this.setState("error", message, true);
    this.emit("error", { message: message });
  };

  Widget.prototype.check = function (file) {
    if (this.maxSize && file.size > this.maxSize) {
      return file.name + " is " + formatBytes(file.size) + "; the limit is " + formatBytes(this.maxSize) + ".";
    }
    var accept = this.input.getAttribute("accept");
    if (accept) {
      var ok = accept.split(",").some(function (p) { return typeMatches(p, file); });
      if (!ok) return file.name + " is not an accepted type (" + accept + ").";
    }
    return null;
  };

  Widget.prototype.start = function (file) {
    if (this.xhr) this.xhr.abort();
    this.showNotice("");
    this.file = file;
    this.grant = null;
    this.offset = 0;
    this.hidden.value = "";
    this.clearInput.value = "";
    var problem = this.check(file);
    if (problem) {
      this.input.value = "";
      this.hidePreview();
      this.fail(problem);
      return;
    }
    this.previewFile(file);
    this.requestTicket();
  };

  Widget.prototype.requestTicket = function () {
    var self = this;
    var file = this.file;
    this.busy = true;
    this.progress.hidden = false;
    this.progress.value = 0;
    this.setState("uploading", "Preparing " + file.name + "…");
    fetch(this.endpoint, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ field: this.field, filename: file.name, size: file.size, content_type: file.type || "" }),
    })
      .then(function (r) {
        return r.json().then(
          function (body) { return { ok: r.ok, body: body }; },
          function () {
            return { ok: false, body: { message: "The upload could not be started (" + r.status + "). Try again in a moment." } };
          }
        );
      })
      .then(function (res) {
        if (self.file !== file) return;
        if (!res.ok) {
          self.fail((res.body && res.body.message) || "The upload was refused.");
          return;
        }
        self.grant = res.body;
        self.offset = 0;
        self.send();
      })
      .catch(function () {
        if (self.file === file) self.fail("Could not reach the server. Check your connection and retry.");
      });
  };

  Widget.prototype.send = function () {
    if (this.grant.resumable) this.sendChunk();
    else this.sendWhole();
  };

  Widget.prototype.openXhr = function (extraHeaders) {
    var g = this.grant;
    var xhr = new XMLHttpRequest();
    xhr.open(g.method || "PUT", g.url, true);
    var headers = g.headers || {};
    for (var k in headers) {
      if (Object.prototype.hasOwnProperty.call(headers, k)) xhr.setRequestHeader(k, headers[k]);
    }
    for (var h in extraHeaders || {}) {
      if (Object.prototype.hasOwnProperty.call(extraHeaders, h)) xhr.setRequestHeader(h, extraHeaders[h]);
    }
    this.xhr = xhr;
    return xhr;
  };

  Widget.prototype.onProgress = function (loaded) {
    var total = this.file.size || 1;
    var pct = Math.min(100, Math.floor((loaded / total) * 100));
    this.progress.value = pct;
    this.progress.setAttribute("aria-valuetext", pct + "%");
    this.status.textContent = "Uploading " + this.file.name + ": " + pct + "% of " + formatBytes(this.file.size);
    this.emit("progress", { loaded: loaded, total: this.file.size });
  };

  /* What the user reads when the storage refuses the bytes: plain words by status; the storage's own
     message (GCS XML, a local-store refusal) is for developers and stays in the network log. */
  Widget.prototype.errorFrom = function (xhr) {
    if (xhr.status === 413) return "The file is larger than allowed. Choose a smaller file.";
    if (xhr.status === 401 || xhr.status === 403 || xhr.status === 410) {
      return "The upload was refused or took too long. Retry to start it again.";
    }
    return "The upload failed (" + xhr.status + "). Retry to send it again.";
  };

  Widget.prototype.sendWhole = function () {
    var self = this;
    var xhr = this.openXhr();
    xhr.upload.onprogress = function (e) { self.onProgress(e.loaded); };
    xhr.onload = function () {
      if (xhr.status >= 200 && xhr.status < 300) self.finish();
      else self.fail(self.errorFrom(xhr));
    };
    xhr.onerror = function () { self.fail("The upload was interrupted. Retry to send it again."); };
    xhr.send(this.file);
  };

  Widget.prototype.sendChunk = function () {
    var self = this;
    var size = this.file.size;
    var chunk = this.grant.chunk_size || 8 * 1024 * 1024;
    var start = this.offset;
    var end = Math.min(start + chunk, size);
    this.pendingEnd = end;
    var xhr = this.openXhr({ "Content-Range": "bytes " + start + "-" + (end - 1) + "/" + size });
    xhr.upload.onprogress = function (e) { self.onProgress(start + e.loaded); };
    xhr.onload = function () { self.afterChunk(xhr); };
    xhr.onerror = function () {
      self.fail("The upload was interrupted at " + Math.floor((self.offset / size) * 100) + "%. Resume to continue.");
    };
    xhr.send(this.file.slice(start, end));
  };

  /* 308 + Range: "bytes=0-<last>" is what a resumable session has; 200/201: complete. */
  Widget.prototype.afterChunk = function (xhr) {
    if (xhr.status === 200 || xhr.status === 201) {
      this.finish();
    } else if (xhr.status === 308) {
      var range = xhr.getResponseHeader("Range");
      var m = range && /bytes=0-(\d+)/.exec(range);
      if (m) {
        this.offset = parseInt(m[1], 10) + 1;
        this.rangeVisible = true;
      } else if (this.rangeVisible) {
        this.offset = 0; /* Range readable before and absent now: nothing is persisted. */
      } else if (this.pendingEnd !== null) {
        /* The browser hides `Range` because the bucket's CORS does not expose it (add "Range" to the CORS
           responseHeader list; `sea-gcp doctor` checks it). Take the whole chunk as persisted, as GCS
           does for complete chunks. */
        this.offset = this.pendingEnd;
      } /* else: a status query whose Range is hidden: keep the last acknowledged offset. */
      this.pendingEnd = null;
      this.onProgress(this.offset);
      this.sendChunk();
    } else {
      this.fail(this.errorFrom(xhr));
    }
  };

  Widget.prototype.queryAndResume = function () {
    var self = this;
    this.busy = true;
    this.progress.hidden = false;
    this.setState("uploading", "Resuming " + this.file.name + "…");
    this.pendingEnd = null;
    var xhr = this.openXhr({ "Content-Range": "bytes */" + this.file.size });
    xhr.onload = function () { self.afterChunk(xhr); };
    xhr.onerror = function () { self.fail("Could not reach the upload session. Retry later."); };
    xhr.send(null);
  };

  Widget.prototype.finish = function () {
    this.showNotice("");
    this.busy = false;
    this.xhr = null;
    this.progress.value = 100;
    this.hidden.value = this.grant.ticket;
    this.clearInput.value = "";
    this.current = this.file.name;
    this.setState("done", "Uploaded " + this.file.name + " (" + formatBytes(this.file.size) + "). Save the form to keep it.");
    this.emit("progress", { loaded: this.file.size, total: this.file.size });
    this.emit("done", { ticket: this.grant.ticket });
  };

  Widget.prototype.cancel = function () {
    this.showNotice("");
    if (this.xhr) {
      this.xhr.onerror = null;
      this.xhr.onload = null;
      this.xhr.abort();
      this.xhr = null;
    }
    this.busy = false;
    this.hidden.value = "";
    this.progress.hidden = true;
    this.setState("cancelled", "Upload of " + (this.file ? this.file.name : "the file") + " cancelled.");
  };

  Widget.prototype.retry = function () {
    if (!this.file) return;
    if (this.grant && this.grant.resumable && this.grant.expires * 1000 > Date.now()) {
      this.queryAndResume();
    } else {
      this.start(this.file);
    }
  };

  Widget.prototype.clear = function () {
    if (this.xhr) this.cancel();
    this.file = null;
    this.grant = null;
    this.hidden.value = "";
    this.input.value = "";
    this.clearInput.value = "1";
    this.current = "";
    this.hidePreview();
    this.setState("cleared", "The file will be removed when you save.");
    this.input.hidden = false;
  };

  /* Disable (or enable again) the form's submit buttons while its submission is in flight. */
  function setSubmitting(form, on) {
    form.setAttribute("aria-busy", on ? "true" : "false");
    var buttons = form.querySelectorAll('button:not([type]), button[type="submit"], input[type="submit"]');
    Array.prototype.forEach.call(buttons, function (b) {
      if (on) {
        if (!b.disabled) b.setAttribute("data-sea-gcp-disabled", "");
        b.disabled = true;
      } else if (b.hasAttribute("data-sea-gcp-disabled")) {
        b.removeAttribute("data-sea-gcp-disabled");
        b.disabled = false;
      }
    });
  }

  function enhance(root) {
    var inputs = (root || document).querySelectorAll('input[type="file"][data-sea-gcp-field]');
    Array.prototype.forEach.call(inputs, function (input) {
      if (input.seaGcpWidget) return;
      input.seaGcpWidget = new Widget(input);
      var form = input.form;
      if (form && !form.seaGcpGuard) {
        form.seaGcpGuard = true;
        form.addEventListener("submit", function (e) {
          if (e.defaultPrevented) return;
          // One submission at a time: a second click on Save while the first is on its way would post
          // the same upload tickets again.
          if (form.seaGcpSubmitting) {
            e.preventDefault();
            return;
          }
          var pending = form.querySelectorAll('.sea-gcp-upload[data-state="uploading"]');
          var missing = Array.prototype.filter.call(form.querySelectorAll("input[data-sea-gcp-field]"), function (i) {
            var w = i.seaGcpWidget;
            return w && w.required && !w.current && !w.hidden.value;
          });
          if (pending.length || missing.length) {
            e.preventDefault();
            var w = (pending.length ? pending[0].querySelector("input[type=file]") : missing[0]).seaGcpWidget;
            if (pending.length) {
              // A notice of its own: progress updates rewrite the status line, not this.
              w.showNotice("Wait for the upload to finish before saving.");
            } else {
              w.setState("error", "Choose a file first.", true);
            }
            return;
          }
          form.seaGcpSubmitting = true;
          // After the event (a button disabled during it would drop its own name from the form data),
          // unless another handler cancelled the submission.
          setTimeout(function () {
            if (e.defaultPrevented) {
              form.seaGcpSubmitting = false;
              return;
            }
            setSubmitting(form, true);
          }, 0);
        });
        // Back to a page kept in the browser's cache: the form may be sent again.
        window.addEventListener("pageshow", function () {
          form.seaGcpSubmitting = false;
          setSubmitting(form, false);
        });
      }
    });
  }

  window.SeaGcpUpload = { enhance: enhance };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", function () { enhance(); });
  else enhance();
})();
