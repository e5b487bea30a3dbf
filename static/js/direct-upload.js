/*
 * Direct upload of a big model file to S3 through the registry's /api/v1/uploads/ API.
 *
 *   import { directUpload } from "/static/js/direct-upload.js";
 *   const artifact = await directUpload(file, {registered_model: "m", version: "1", precision: "INT8"}, {
 *     csrfToken,                                   // for session-authenticated pages
 *     onProgress: (sent, total) => { ... },        // bytes acknowledged by S3 so far
 *     onSent: () => { ... },                       // all parts sent; the registry is verifying
 *     api: "/api/v1/uploads/",                     // the uploads endpoint (this is the default)
 *     signal,                                      // an AbortSignal: aborts the upload on the server too
 *   });
 *
 * Steps: POST /api/v1/uploads/ (metadata, filename, size) -> presigned part URLs; PUT each part
 * straight to S3 (a few at a time); POST .../complete/ with the parts' ETags -> the registry checks
 * size and sha256 and answers the new artifact. On any failure the upload is aborted (DELETE).
 * The bucket's CORS rules must allow PUT from the registry's origin and expose the ETag header.
 * Plain ES module, no dependencies.
 */

const API = "/api/v1/uploads/";

export class DirectUploadError extends Error {
  constructor(status, body) {
    const error = (body && body.error) || {};
    super(error.message || `Upload failed with status ${status}`);
    this.status = status;
    this.code = error.code;
    this.fields = error.fields;
  }
}

async function api(method, url, body, csrfToken, signal) {
  const headers = { "Accept": "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (csrfToken) headers["X-CSRFToken"] = csrfToken;
  const response = await fetch(url, {
    method, headers, signal, credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  const data = text ? JSON.parse(text) : null;
  if (!response.ok) throw new DirectUploadError(response.status, data);
  return data;
}

function putPart(url, blob, onPartProgress, signal) {
  // XMLHttpRequest rather than fetch: it reports upload progress.
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("PUT", url);
    xhr.upload.onprogress = (event) => onPartProgress(event.loaded);
    xhr.onload = () => {
      const etag = xhr.getResponseHeader("ETag");
      if (xhr.status >= 200 && xhr.status < 300 && etag) resolve(etag);
      else reject(new DirectUploadError(xhr.status, { error: { code: "part_failed",
        message: etag ? `S3 refused a part (${xhr.status})` : "S3 did not expose the ETag header (check the bucket's CORS rules)" } }));
    };
    xhr.onerror = () => reject(new DirectUploadError(0, { error: { code: "network_error", message: "A part could not be sent." } }));
    xhr.onabort = () => reject(new DOMException("Upload aborted", "AbortError"));
    if (signal) signal.addEventListener("abort", () => xhr.abort(), { once: true });
    xhr.send(blob);
  });
}

/** Upload `file` (a File or Blob) with registration `metadata`; resolves to the artifact JSON. */
export async function directUpload(file, metadata, { csrfToken, onProgress, onSent, signal, concurrency = 3, sha256,
                                                     api: base = API } = {}) {
  const session = await api("POST", base, {
    ...metadata, filename: file.name || "model.bin", size: file.size, content_type: file.type || "",
    ...(sha256 ? { sha256 } : {}),
  }, csrfToken, signal);
  const loaded = new Array(session.parts.length).fill(0);
  const report = () => onProgress && onProgress(loaded.reduce((a, b) => a + b, 0), file.size);
  const done = [];
  let next = 0;
  try {
    const worker = async () => {
      while (next < session.parts.length) {
        const index = next++;
        const part = session.parts[index];
        const start = index * session.part_size;
        const blob = file.slice(start, Math.min(start + session.part_size, file.size));
        const etag = await putPart(part.url, blob, (n) => { loaded[index] = n; report(); }, signal);
        loaded[index] = blob.size;
        report();
        done.push({ part_number: part.part_number, etag });
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, session.parts.length) }, worker));
    if (onSent) onSent();  // every byte is in S3; the registry now checks and registers it
    return await api("POST", `${base}${session.id}/complete/`, { parts: done }, csrfToken, signal);
  } catch (error) {
    // Best effort: free the parts already in S3. A failed complete has already cleaned up.
    api("DELETE", `${base}${session.id}/`, undefined, csrfToken).catch(() => {});
    throw error;
  }
}

// For classic scripts (the upload page's upload.js), which cannot import a module.
window.RegistryDirectUpload = { directUpload, DirectUploadError };
