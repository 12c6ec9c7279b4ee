// Latchkey: progressive enhancement only. Pages work without it; with it,
// password fields get a "Show" toggle (instead of a confirm-password field).
(function () {
  "use strict";
  document.querySelectorAll("input[data-reveal]").forEach(function (input) {
    var wrap = document.createElement("div");
    wrap.className = "reveal-wrap";
    input.parentNode.insertBefore(wrap, input);
    wrap.appendChild(input);
    var button = document.createElement("button");
    button.type = "button";
    button.className = "reveal";
    button.textContent = "Show";
    button.setAttribute("aria-controls", input.id);
    button.setAttribute("aria-pressed", "false");
    button.setAttribute("aria-label", "Show password");
    button.addEventListener("click", function () {
      var show = input.type === "password";
      input.type = show ? "text" : "password";
      button.textContent = show ? "Hide" : "Show";
      button.setAttribute("aria-pressed", show ? "true" : "false");
      button.setAttribute("aria-label", show ? "Hide password" : "Show password");
      input.focus();
    });
    wrap.appendChild(button);
  });
})();

// WebAuthn (security keys and passkeys): the one part of Latchkey that needs
// JavaScript. A form marked data-webauthn asks its data-options URL for a
// ceremony, runs it in the browser, and posts the result in its hidden
// "credential" field.
(function () {
  "use strict";
  var forms = document.querySelectorAll("form[data-webauthn]");
  if (!forms.length) return;
  var supported = !!(window.PublicKeyCredential && navigator.credentials);

  function fromB64u(s) {
    s = s.replace(/-/g, "+").replace(/_/g, "/");
    while (s.length % 4) s += "=";
    var bin = atob(s), out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out.buffer;
  }
  function toB64u(buf) {
    if (!buf) return null;
    var bytes = new Uint8Array(buf), bin = "";
    for (var i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i]);
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  function decodeOptions(pk) {
    pk.challenge = fromB64u(pk.challenge);
    if (pk.user) pk.user.id = fromB64u(pk.user.id);
    (pk.excludeCredentials || []).forEach(function (c) { c.id = fromB64u(c.id); });
    (pk.allowCredentials || []).forEach(function (c) { c.id = fromB64u(c.id); });
    return pk;
  }
  function encode(cred) {
    var r = cred.response, out = {
      id: cred.id, rawId: toB64u(cred.rawId), type: cred.type,
      extensions: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {}
    };
    if (r.attestationObject) {
      out.response = { attestationObject: toB64u(r.attestationObject), clientDataJSON: toB64u(r.clientDataJSON),
        transports: r.getTransports ? r.getTransports() : [] };
    } else {
      out.response = { authenticatorData: toB64u(r.authenticatorData), clientDataJSON: toB64u(r.clientDataJSON),
        signature: toB64u(r.signature), userHandle: toB64u(r.userHandle) };
    }
    return JSON.stringify(out);
  }
  function say(form, text) {
    var status = form.querySelector("[data-webauthn-status]");
    if (status) { status.textContent = text; status.hidden = false; }
  }
  function options(form) {
    var body = new URLSearchParams();
    body.set("csrf", form.elements.csrf.value);
    if (form.dataset.kind) body.set("kind", form.dataset.kind);
    return fetch(form.dataset.options, { method: "POST", body: body, credentials: "same-origin",
      headers: { "Accept": "application/json" } })
      .then(function (res) {
        return res.json().then(function (j) {
          if (!res.ok) throw new Error(j.message || "The request was refused.");
          return j;
        });
      });
  }
  function finish(form, ceremony, cred) {
    form.elements.ceremony.value = ceremony;
    form.elements.credential.value = encode(cred);
    form.submit();
  }

  var conditional = null;
  forms.forEach(function (form) {
    if (!supported) {
      say(form, "This browser cannot use security keys or passkeys.");
      var b = form.querySelector("button");
      if (b) b.disabled = true;
      return;
    }
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      if (conditional) { conditional.abort(); conditional = null; }
      var mode = form.dataset.webauthn;
      options(form).then(function (started) {
        var pk = decodeOptions(started.options.publicKey);
        var call = mode === "create" ? navigator.credentials.create({ publicKey: pk })
                                     : navigator.credentials.get({ publicKey: pk });
        return call.then(function (cred) { finish(form, started.ceremony, cred); });
      }).catch(function (e) {
        say(form, e && e.name === "NotAllowedError"
          ? "Nothing was saved or sent: the request was cancelled or timed out. Try again."
          : (e && e.message) || "That did not work. Try again.");
      });
    });
    // Passkeys offered in the email field's autofill, where browsers can.
    if (form.dataset.webauthn === "passkey" && PublicKeyCredential.isConditionalMediationAvailable) {
      PublicKeyCredential.isConditionalMediationAvailable().then(function (ok) {
        if (!ok) return;
        return options(form).then(function (started) {
          conditional = new AbortController();
          return navigator.credentials.get({ publicKey: decodeOptions(started.options.publicKey),
            mediation: "conditional", signal: conditional.signal })
            .then(function (cred) { finish(form, started.ceremony, cred); });
        });
      }).catch(function () { /* autofill is optional; the button still works */ });
    }
  });
})();
