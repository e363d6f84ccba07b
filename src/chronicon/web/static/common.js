// Shared by every page: JSON requests (sending to the login page when the server asks),
// and a DOM builder that only ever sets text (model text is never parsed as HTML).
"use strict";
window.chronicon = (function () {
  // With CHRONICON_API_TOKEN set, the browser logs in once at /login and then carries an
  // HttpOnly session cookie (EventSource included): scripts never hold the token.
  function logIn() {
    window.location.href = "/login?next=" + encodeURIComponent(window.location.pathname + window.location.search);
  }

  // fetch + JSON; a 401 sends the browser to the login page. Errors carry the server's message.
  async function api(method, url, body) {
    const headers = { Accept: "application/json" };
    const init = { method: method, headers: headers, credentials: "same-origin" };
    if (body !== undefined) { headers["Content-Type"] = "application/json"; init.body = JSON.stringify(body); }
    const response = await fetch(url, init);
    if (response.status === 401) logIn();
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

  return { api: api, el: el, logIn: logIn, time: time };
})();
