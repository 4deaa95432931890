/* A small, offline rendering of /openapi.json (Swagger UI would need CDN assets). */
(function () {
  "use strict";
  const el = (tag, cls, text) => { const e = document.createElement(tag); if (cls) e.className = cls; if (text != null) e.textContent = text; return e; };
  function resolve(doc, s) {
    let guard = 0;
    while (s && s.$ref && guard++ < 10) s = s.$ref.split("/").slice(1).reduce((o, k) => o[k], doc);
    return s || {};
  }
  function example(doc, s, depth) {
    s = resolve(doc, s);
    if (depth > 4) return null;
    if (s.anyOf) return example(doc, s.anyOf.find((x) => x.type !== "null") || s.anyOf[0], depth + 1);
    if (s.default !== undefined) return s.default;
    if (s.type === "object" || s.properties) {
      const o = {};
      for (const [k, v] of Object.entries(s.properties || {})) o[k] = example(doc, v, depth + 1);
      return o;
    }
    if (s.type === "array") return [example(doc, s.items || {}, depth + 1)];
    if (s.enum) return s.enum[0];
    return { string: s.format === "binary" ? "<file>" : "string", integer: 0, number: 0, boolean: false }[s.type] ?? null;
  }
  fetch("/openapi.json").then((r) => r.json()).then((doc) => {
    document.getElementById("version").textContent = "v" + doc.info.version + " · OpenAPI " + doc.openapi;
    document.getElementById("desc").textContent = doc.info.description || "";
    const ops = document.getElementById("ops");
    for (const [path, item] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(item)) {
        const d = el("details", "op");
        const s = el("summary");
        s.append(el("span", "method " + method, method.toUpperCase()), el("span", "route", path), el("span", "sum", op.summary || ""));
        d.append(s);
        const inner = el("div", "inner");
        if (op.description) inner.append(el("p", null, op.description));
        if (op.parameters && op.parameters.length) {
          inner.append(el("h4", null, "Parameters"));
          const t = el("table");
          t.append(Object.assign(el("tr"), { innerHTML: "<th>Name</th><th>In</th><th>Type</th><th>Description</th>" }));
          for (const p of op.parameters) {
            const sch = resolve(doc, p.schema);
            const tr = el("tr");
            tr.append(el("td", null, p.name + (p.required ? " *" : "")), el("td", null, p.in),
              el("td", null, sch.type || (sch.anyOf || []).map((x) => x.type).filter(Boolean).join(" | ")), el("td", null, p.description || sch.description || ""));
            t.append(tr);
          }
          inner.append(t);
        }
        if (op.requestBody) {
          for (const [ctype, body] of Object.entries(op.requestBody.content || {})) {
            inner.append(el("h4", null, "Body · " + ctype));
            inner.append(el("pre", null, JSON.stringify(example(doc, body.schema, 0), null, 2)));
          }
        }
        inner.append(el("h4", null, "Responses"));
        const codes = el("table");
        for (const [code, r] of Object.entries(op.responses || {})) {
          const tr = el("tr"); tr.append(el("td", null, code), el("td", null, r.description || "")); codes.append(tr);
        }
        inner.append(codes);
        d.append(inner);
        ops.append(d);
      }
    }
  }).catch((e) => { document.getElementById("ops").textContent = "Could not load /openapi.json: " + e; });
})();
