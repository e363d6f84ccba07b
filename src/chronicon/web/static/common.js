// Shared by every page: the API token (only when the server asks for one), JSON requests,
// and a DOM builder that only ever sets text (model text is never parsed as HTML).
"use strict";
window.chronicon = (function () {
  const TOKEN_KEY = "chronicon.apiToken";

  function token() { return localStorage.getItem(TOKEN_KEY) || ""; }

  function askToken(message) {
    const value = window.prompt(message || "This server needs its API token (CHRONICON_API_TOKEN):");
    if (value) localStorage.setItem(TOKEN_KEY, value.trim());
    return Boolean(value);
  }

  function authHeaders() {
    const t = token();
    return t ? { Authorization: "Bearer " + t } : {};
  }

  // fetch + JSON; a 401 asks for the token once and retries. Errors carry the server's message.
  async function api(method, url, body, retried) {
    const headers = Object.assign({ Accept: "application/json" }, authHeaders());
    const init = { method: method, headers: headers };
    if (body !== undefined) { headers["Content-Type"] = "application/json"; init.body = JSON.stringify(body); }
    const response = await fetch(url, init);
    if (response.status === 401 && !retried && askToken()) return api(method, url, body, true);
    const data = await response.json().catch(function () { return {}; });
    if (!response.ok) {
      const error = new Error(data.error || ("request failed (" + response.status + ")"));
      error.status = response.status; error.field = data.field;
      throw error;
    }
    return data;
  }

  // el("td", {className: "x"}, "text", childNode): children are text or nodes, never HTML.
  function el(tag, props) {
    const node = document.createElement(tag);
    Object.assign(node, props || {});
    for (let i = 2; i < arguments.length; i++) {
      const child = arguments[i];
      if (child === null || child === undefined) continue;
      node.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function time(iso) {
    if (!iso) return "";
    const d = new Date(iso);
    return isNaN(d) ? iso : d.toLocaleString();
  }

  return { api: api, el: el, token: token, askToken: askToken, authHeaders: authHeaders, time: time };
})();
