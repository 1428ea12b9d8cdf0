"""/docs: the OpenAPI document as one HTML page (no script, no CDN), styled by the front
end's stylesheet."""

from __future__ import annotations

import html
from typing import Any

_STYLE = """
.ref { max-width: 1100px; margin: 0 auto; padding: 20px; }
.ref section { background: var(--panel); border: 1px solid var(--line); border-radius: 6px;
  padding: 14px 18px; margin: 0 0 16px; }
.ref h2 { margin: 18px 0 8px; }
.ref h3 { margin: 0 0 6px; font-size: 14px; }
.ref .verb { display: inline-block; min-width: 48px; font-family: var(--mono); font-weight: 600;
  color: var(--accent); }
.ref table { border-collapse: collapse; width: 100%; margin: 6px 0 10px; }
.ref th, .ref td { text-align: left; vertical-align: top; padding: 4px 8px;
  border-bottom: 1px solid var(--line); }
.ref th { color: var(--muted); font-weight: 500; }
.ref code, .ref pre { font-family: var(--mono); font-size: 12px; }
.ref pre { background: var(--bg); padding: 8px; border-radius: 4px; overflow-x: auto; margin: 0; }
"""


def _e(text: object) -> str:
    return html.escape(str(text))


def _md(text: str) -> str:
    """Escape, then render `code` spans (the only markup the descriptions use)."""
    parts = _e(text).split("`")
    return "".join(f"<code>{s}</code>" if i % 2 else s for i, s in enumerate(parts))


def _type(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        return f'<a href="#schema-{_e(name)}">{_e(name)}</a>'
    if "allOf" in schema:
        return _type(schema["allOf"][0])
    if "anyOf" in schema or "oneOf" in schema:
        return " | ".join(_type(s) for s in schema.get("anyOf", schema.get("oneOf", [])))
    kind = schema.get("type", "any")
    if kind == "array":
        return f"array of {_type(schema.get('items', {}))}"
    extra = [f"{k} {schema[k]}" for k in ("minimum", "maximum", "default") if k in schema]
    if "enum" in schema:
        extra.insert(0, " | ".join(str(v) for v in schema["enum"]))
    return _e(kind) + (f" <span class=muted>({_e(', '.join(extra))})</span>" if extra else "")


def render_docs(doc: dict[str, Any]) -> str:
    out = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(doc['info']['title'])}: API reference</title>",
        '<link rel="icon" href="data:,"><link rel="stylesheet" href="/style.css">',
        f"<style>{_STYLE}</style></head><body>",
        '<header class="topbar"><div class="brand"><span class="brand-mark"></span>',
        f"<h1>{_e(doc['info']['title'])} {_e(doc['info']['version'])}</h1>",
        '<span class="brand-sub">API reference, from <a style="color:inherit" '
        'href="/openapi.json">/openapi.json</a></span></div></header><main class="ref">',
        f"<p>{_md(doc['info']['description'])}</p><h2>Endpoints</h2>",
    ]
    for path, methods in doc["paths"].items():
        for method, op in methods.items():
            out.append(
                f'<section id="{_e(op["operationId"])}"><h3><span class="verb">'
                f"{_e(method.upper())}</span> <code>{_e(path)}</code> · {_e(op['summary'])}</h3>"
                f"<p>{_md(op['description'])}</p>"
            )
            params = op.get("parameters", [])
            if params:
                out.append(
                    "<table><tr><th>parameter</th><th>in</th><th>type</th><th>what</th></tr>"
                )
                for prm in params:
                    req = " <span class=muted>required</span>" if prm.get("required") else ""
                    out.append(
                        f"<tr><td><code>{_e(prm['name'])}</code>{req}</td><td>{_e(prm['in'])}"
                        f"</td><td>{_type(prm['schema'])}</td><td>{_md(prm['description'])}"
                        "</td></tr>"
                    )
                out.append("</table>")
            if "requestBody" in op:
                for media, content in op["requestBody"]["content"].items():
                    out.append(f"<p>Body: <code>{_e(media)}</code> {_type(content['schema'])}</p>")
            out.append("<table><tr><th>status</th><th>body</th><th>when</th></tr>")
            for status, resp in op["responses"].items():
                bodies = ", ".join(
                    f"<code>{_e(m)}</code> {_type(c['schema'])}"
                    for m, c in resp.get("content", {}).items()
                )
                out.append(
                    f"<tr><td>{_e(status)}</td><td>{bodies}</td><td>{_md(resp['description'])}"
                    "</td></tr>"
                )
            out.append("</table></section>")
    out.append("<h2>Schemas</h2>")
    for name, schema in doc["components"]["schemas"].items():
        out.append(f'<section id="schema-{_e(name)}"><h3>{_e(name)}</h3>')
        if schema.get("description"):
            out.append(f"<p>{_md(schema['description'])}</p>")
        if "properties" in schema:
            required = set(schema.get("required", []))
            out.append("<table><tr><th>field</th><th>type</th></tr>")
            for prop, sub in schema["properties"].items():
                req = "" if prop in required else " <span class=muted>optional</span>"
                out.append(f"<tr><td><code>{_e(prop)}</code>{req}</td><td>{_type(sub)}</td></tr>")
            out.append("</table>")
        else:
            out.append(f"<p>{_type(schema)}</p>")
        out.append("</section>")
    out.append("</main></body></html>")
    return "\n".join(out)
