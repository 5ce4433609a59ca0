// storyd API documentation: renders the OpenAPI document of this server
// (fetched from the same origin) as a browsable reference with "Try it"
// forms. Written for storyd; no third-party code. Every string taken from
// the document or from a response is put into the page as text (DOM nodes
// and textContent), never parsed as HTML.
(function () {
  'use strict';

  var body = document.body;
  var query = new URLSearchParams(window.location.search);
  var reference = body.getAttribute('data-mode') === 'reference' || query.get('mode') === 'reference';
  var specURL = body.getAttribute('data-spec') || '/api/v1/openapi.json';
  var METHODS = ['get', 'post', 'put', 'patch', 'delete', 'head', 'options', 'trace'];
  var STORE = { token: 'storyd.docs.accessToken', user: 'storyd.docs.userId' };
  var HEADERS_OF_INTEREST = ['content-type', 'content-length', 'x-user-id', 'x-request-id', 'retry-after',
    'allow', 'location', 'www-authenticate', 'etag', 'cache-control'];
  var PROTOCOL_DOC = 'docs/protocol.md';

  var spec = null;
  var ops = []; // {id, method, path, op, tag, article, toggle, panel, tocItem}
  var auth = { token: null, user: null }; // the global inputs, interactive mode

  // ---- DOM helpers ---------------------------------------------------

  // el builds an element. props: class, text, on<event> handlers, boolean
  // properties (hidden, disabled, open, checked, required), any other key
  // is an attribute. Children: nodes, strings (as text), arrays, null.
  function el(tag, props) {
    var node = document.createElement(tag);
    if (props) {
      Object.keys(props).forEach(function (k) {
        var v = props[k];
        if (v === undefined || v === null || v === false) return;
        if (k === 'class') node.className = v;
        else if (k === 'text') node.textContent = String(v);
        else if (k.slice(0, 2) === 'on' && typeof v === 'function') node.addEventListener(k.slice(2), v);
        else if (k === 'hidden' || k === 'disabled' || k === 'open' || k === 'checked' || k === 'required') node[k] = true;
        else if (k === 'value') node.value = v;
        else node.setAttribute(k, v === true ? '' : String(v));
      });
    }
    for (var i = 2; i < arguments.length; i++) append(node, arguments[i]);
    return node;
  }

  function append(node, child) {
    if (child === null || child === undefined || child === false) return;
    if (Array.isArray(child)) { child.forEach(function (c) { append(node, c); }); return; }
    node.appendChild(typeof child === 'string' || typeof child === 'number' ? document.createTextNode(String(child)) : child);
  }

  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }

  // inline renders one line of prose: `backticks` become <code>, the rest
  // is text.
  function inline(text) {
    var frag = document.createDocumentFragment();
    var parts = String(text).split('`');
    if (parts.length % 2 === 0) { // an unmatched backtick stays as it is
      var last = parts.pop();
      parts[parts.length - 1] += '`' + last;
    }
    parts.forEach(function (part, i) {
      if (!part) return;
      frag.appendChild(i % 2 ? el('code', { text: part }) : document.createTextNode(part));
    });
    return frag;
  }

  // prose renders a description: paragraphs at blank lines, inline code.
  function prose(text, cls) {
    var box = el('div', { class: 'prose' + (cls ? ' ' + cls : '') });
    String(text).split(/\n\s*\n/).forEach(function (para) {
      if (para.trim()) box.appendChild(el('p', null, inline(para.trim())));
    });
    return box;
  }

  function slug(s) { return String(s).replace(/[^A-Za-z0-9_-]+/g, '-').replace(/^-+|-+$/g, '') || 'x'; }

  // ---- the document: references, schemas, examples -------------------

  function pointer(ref) {
    if (typeof ref !== 'string' || ref.charAt(0) !== '#') return undefined;
    var node = spec;
    var parts = ref.slice(1).split('/').slice(1);
    for (var i = 0; i < parts.length; i++) {
      var key = decodeURIComponent(parts[i]).replace(/~1/g, '/').replace(/~0/g, '~');
      if (node === null || typeof node !== 'object' || !(key in node)) return undefined;
      node = node[key];
    }
    return node;
  }

  // deref follows $ref (local references only) to the object it names.
  function deref(obj) {
    for (var n = 0; obj && typeof obj === 'object' && typeof obj.$ref === 'string' && n < 32; n++) {
      var target = pointer(obj.$ref);
      if (target === undefined) return {};
      obj = target;
    }
    return obj || {};
  }

  function refName(ref) { var p = String(ref).split('/'); return p[p.length - 1]; }

  // typeInfo describes a schema's type: its name(s) without null and
  // whether null is allowed.
  function typeInfo(s) {
    var t = s.type;
    var nullable = s.nullable === true;
    if (Array.isArray(t)) {
      nullable = nullable || t.indexOf('null') >= 0;
      t = t.filter(function (x) { return x !== 'null'; });
      t = t.length ? t.join(' | ') : 'null';
    }
    if (!t) {
      if (s.properties || s.additionalProperties) t = 'object';
      else if (s.items) t = 'array';
      else if (s.enum && s.enum.length) t = typeof s.enum[0];
      else if (s.const !== undefined) t = typeof s.const;
    }
    return { type: t || 'any', nullable: nullable };
  }

  function isObjectLike(s) {
    return !!(s.properties || s.allOf || s.oneOf || s.anyOf ||
      (s.additionalProperties && typeof s.additionalProperties === 'object' && Object.keys(s.additionalProperties).length));
  }

  // label is the short type of a schema, e.g. "string", "array of Scene".
  function label(raw) {
    if (!raw || typeof raw !== 'object') return 'any';
    var s = deref(raw);
    var ti = typeInfo(s);
    if (raw.$ref && (ti.type === 'object' || s.properties)) return refName(raw.$ref);
    if (s.oneOf || s.anyOf) return (s.oneOf || s.anyOf).map(label).join(' | ');
    if (s.allOf) return s.allOf.map(label).join(' & ');
    if (ti.type === 'array' || (Array.isArray(s.type) && s.type.indexOf('array') >= 0)) return 'array of ' + label(s.items);
    if (ti.type === 'object' && s.additionalProperties && typeof s.additionalProperties === 'object' && !s.properties) {
      return 'map of ' + label(s.additionalProperties);
    }
    return ti.type;
  }

  // merged folds allOf into one object schema.
  function merged(s) {
    if (!s.allOf) return s;
    var out = { type: 'object', properties: {}, required: [] };
    [s].concat(s.allOf.map(deref)).forEach(function (part) {
      part = merged(part === s ? Object.assign({}, s, { allOf: undefined }) : part);
      Object.keys(part.properties || {}).forEach(function (k) { out.properties[k] = part.properties[k]; });
      (part.required || []).forEach(function (k) { if (out.required.indexOf(k) < 0) out.required.push(k); });
      if (part.description && !out.description) out.description = part.description;
    });
    return out;
  }

  var SAMPLE_UUID = '3fa85f64-5717-4562-b3fc-2c963f66afa6';

  // example generates a JSON value that fits the schema; requiredOnly
  // leaves optional object properties out.
  function example(raw, requiredOnly, seen) {
    seen = seen || [];
    if (!raw || typeof raw !== 'object') return null;
    if (raw.$ref) {
      if (seen.indexOf(raw.$ref) >= 0 || seen.length > 12) return null;
      seen = seen.concat([raw.$ref]);
    }
    var s = merged(deref(raw));
    if (s.example !== undefined) return s.example;
    if (Array.isArray(s.examples) && s.examples.length) return s.examples[0];
    if (s.default !== undefined) return s.default;
    if (s.const !== undefined) return s.const;
    if (Array.isArray(s.enum) && s.enum.length) return s.enum[0];
    if (s.oneOf || s.anyOf) return example((s.oneOf || s.anyOf)[0], requiredOnly, seen);
    var t = typeInfo(s).type.split(' | ')[0];
    switch (t) {
      case 'object': {
        var out = {};
        var req = s.required || [];
        Object.keys(s.properties || {}).forEach(function (k) {
          if (requiredOnly && req.indexOf(k) < 0) return;
          out[k] = example(s.properties[k], requiredOnly, seen);
        });
        if (!s.properties && s.additionalProperties && typeof s.additionalProperties === 'object' && !requiredOnly) {
          out.key = example(s.additionalProperties, requiredOnly, seen);
        }
        return out;
      }
      case 'array':
        return requiredOnly && !(s.minItems > 0) ? [] : [example(s.items, requiredOnly, seen)];
      case 'integer':
        return typeof s.minimum === 'number' ? s.minimum : 0;
      case 'number':
        return typeof s.minimum === 'number' ? s.minimum : 0;
      case 'boolean':
        return true;
      case 'null':
        return null;
      case 'string':
        switch (s.format) {
          case 'uuid': return SAMPLE_UUID;
          case 'date-time': return '2025-01-01T12:00:00Z';
          case 'date': return '2025-01-01';
          case 'email': return 'user@example.com';
          case 'uri': case 'url': return '/path';
          default: return 'string';
        }
      default:
        return {};
    }
  }

  // constraints lists a schema's validation keywords as short chips.
  function constraints(s) {
    var out = [];
    var add = function (key, text) { if (s[key] !== undefined && s[key] !== null) out.push(text(s[key])); };
    add('minLength', function (v) { return 'min length ' + v; });
    add('maxLength', function (v) { return 'max length ' + v; });
    add('minimum', function (v) { return '≥ ' + v; });
    add('exclusiveMinimum', function (v) { return typeof v === 'number' ? '> ' + v : 'exclusive min'; });
    add('maximum', function (v) { return '≤ ' + v; });
    add('exclusiveMaximum', function (v) { return typeof v === 'number' ? '< ' + v : 'exclusive max'; });
    add('minItems', function (v) { return 'min items ' + v; });
    add('maxItems', function (v) { return 'max items ' + v; });
    add('pattern', function (v) { return 'pattern ' + v; });
    add('default', function (v) { return 'default ' + JSON.stringify(v); });
    if (Array.isArray(s.enum)) out.push('one of ' + s.enum.map(function (v) { return JSON.stringify(v); }).join(', '));
    if (s.uniqueItems) out.push('unique items');
    if (s.readOnly) out.push('read-only');
    if (s.writeOnly) out.push('write-only');
    if (s.deprecated) out.push('deprecated');
    return out;
  }

  // typeChips is the type of a field as badges: type, format, nullable.
  function typeChips(raw) {
    var s = deref(raw);
    var ti = typeInfo(s);
    var format = s.format || (s.items && deref(s.items).format);
    return [
      el('span', { class: 'type', text: label(raw) }),
      format ? el('span', { class: 'format', text: format }) : null,
      ti.nullable ? el('span', { class: 'nullable', text: 'nullable' }) : null
    ];
  }

  // fields renders the properties of an object schema (and, nested, of
  // the objects and arrays of objects inside it).
  function fields(raw, depth, seen) {
    if (raw && raw.$ref) {
      if (seen.indexOf(raw.$ref) >= 0) return el('p', { class: 'muted', text: '(recursive: ' + refName(raw.$ref) + ')' });
      seen = seen.concat([raw.$ref]);
    }
    var s = merged(deref(raw));
    var ti = typeInfo(s);
    if (ti.type === 'array') return fields(s.items || {}, depth, seen);
    if (s.oneOf || s.anyOf) {
      var alts = el('ol', { class: 'alternatives' });
      (s.oneOf || s.anyOf).forEach(function (alt) {
        alts.appendChild(el('li', null, el('span', { class: 'type', text: label(alt) }), nestedFields(alt, depth, seen)));
      });
      return el('div', { class: 'alt-box' }, el('p', { class: 'muted', text: s.oneOf ? 'One of:' : 'Any of:' }), alts);
    }
    if (!s.properties) {
      if (s.additionalProperties && typeof s.additionalProperties === 'object') {
        return el('p', { class: 'muted' }, 'Any keys; each value: ', el('span', { class: 'type', text: label(s.additionalProperties) }));
      }
      return null;
    }
    var req = s.required || [];
    var names = Object.keys(s.properties);
    var list = el('ul', { class: 'fields' + (depth ? ' nested' : '') });
    names.forEach(function (name) {
      var prop = s.properties[name];
      var ps = deref(prop);
      var required = req.indexOf(name) >= 0;
      var li = el('li', { class: 'field' },
        el('div', { class: 'field-head' },
          el('code', { class: 'field-name', text: name }),
          typeChips(prop),
          required ? el('span', { class: 'required', text: 'required' }) : el('span', { class: 'optional', text: 'optional' })),
        (prop.description || ps.description) ? prose(prop.description || ps.description, 'field-desc') : null);
      var chips = constraints(Object.assign({}, ps, prop));
      if (chips.length) {
        li.appendChild(el('div', { class: 'constraints' }, chips.map(function (c) { return el('span', { class: 'chip', text: c }); })));
      }
      if (depth < 8) append(li, nestedFields(prop, depth + 1, seen));
      list.appendChild(li);
    });
    return list;
  }

  function nestedFields(raw, depth, seen) {
    var s = deref(raw);
    var inner = typeInfo(s).type === 'array' ? deref(s.items || {}) : s;
    if (!isObjectLike(merged(inner))) return null;
    return fields(raw, depth, seen);
  }

  // schemaBlock renders a body schema: its type, its fields, an example.
  function schemaBlock(raw, opts) {
    opts = opts || {};
    var s = deref(raw);
    var head = el('p', { class: 'schema-type' }, opts.prefix || 'Schema: ', typeChips(raw));
    if (s.description) head = [head, prose(s.description)];
    var tree = fields(raw, 0, []);
    var ex = example(raw, false);
    var exBox = el('div', { class: 'example' },
      el('p', { class: 'example-title', text: opts.exampleTitle || 'Example' }),
      el('pre', { class: 'code', tabindex: '0' }, el('code', { text: JSON.stringify(ex, null, 2) })));
    return el('div', { class: 'schema' },
      el('div', { class: 'schema-fields' }, head, tree),
      exBox);
  }

  // ---- operations ----------------------------------------------------

  function collect() {
    var tags = [];
    var byTag = {};
    (spec.tags || []).forEach(function (t) {
      if (t && t.name && !byTag[t.name]) { byTag[t.name] = []; tags.push(t.name); }
    });
    Object.keys(spec.paths || {}).forEach(function (path) {
      var item = spec.paths[path] || {};
      METHODS.forEach(function (m) {
        var op = item[m];
        if (!op) return;
        var tag = (op.tags && op.tags[0]) || 'Other';
        if (!byTag[tag]) { byTag[tag] = []; tags.push(tag); }
        var params = (item.parameters || []).concat(op.parameters || []).map(deref);
        var id = op.operationId || (m + path);
        byTag[tag].push({ id: id, anchor: 'op-' + slug(id), method: m, path: path, op: op, tag: tag, params: params });
      });
    });
    return tags.filter(function (t) { return byTag[t].length; }).map(function (t) {
      var meta = (spec.tags || []).filter(function (x) { return x && x.name === t; })[0] || {};
      return { name: t, description: meta.description, ops: byTag[t] };
    });
  }

  function isWebSocket(o) {
    return !!(o.op.responses && o.op.responses['101']);
  }

  function methodBadge(m) {
    return el('span', { class: 'method m-' + m, text: m.toUpperCase() });
  }

  // pathNode shows a path with its {parameters} highlighted.
  function pathNode(path, cls) {
    var code = el('code', { class: cls || 'path' });
    String(path).split(/(\{[^}]+\})/).forEach(function (part) {
      if (!part) return;
      if (/^\{/.test(part)) { code.appendChild(el('span', { class: 'path-param', text: part })); return; }
      // Long paths wrap after a slash rather than inside a word.
      part.split('/').forEach(function (seg, i) {
        if (i) { code.appendChild(document.createTextNode('/')); code.appendChild(document.createElement('wbr')); }
        if (seg) code.appendChild(document.createTextNode(seg));
      });
    });
    return code;
  }

  function section(title, content, cls) {
    return el('section', { class: 'op-section' + (cls ? ' ' + cls : '') }, el('h4', { text: title }), content);
  }

  function securityNode(o) {
    var reqs = o.op.security !== undefined ? o.op.security : spec.security;
    if (!reqs || !reqs.length) {
      return el('p', { class: 'muted', text: 'None required.' });
    }
    var schemes = (spec.components && spec.components.securitySchemes) || {};
    var list = el('ul', { class: 'security' });
    reqs.forEach(function (req) {
      var names = Object.keys(req || {});
      if (!names.length) { list.appendChild(el('li', { text: 'or no credentials' })); return; }
      var li = el('li');
      names.forEach(function (name, i) {
        var sc = deref(schemes[name] || {});
        if (i) li.appendChild(document.createTextNode(' and '));
        var what;
        if (sc.type === 'http' && String(sc.scheme).toLowerCase() === 'bearer') {
          what = [el('strong', { text: 'Bearer token' }), ' — ', el('code', { text: 'Authorization: Bearer <token>' }),
            sc.bearerFormat ? ' (' + sc.bearerFormat + ')' : ''];
        } else if (sc.type === 'apiKey') {
          what = [el('strong', { text: sc.name || name }), ' — ', el('code', { text: sc['in'] === 'header' ? sc.name + ': <value>' : sc.name + '=<value>' }),
            ' in the ' + (sc['in'] || 'header')];
        } else {
          what = [el('strong', { text: name }), sc.type ? ' (' + sc.type + ')' : ''];
        }
        append(li, what);
        if (sc.description) append(li, [' — ', inline(sc.description)]);
      });
      list.appendChild(li);
    });
    return [el('p', { class: 'muted', text: reqs.length > 1 ? 'Any one of:' : 'Requires:' }), list];
  }

  function paramsTable(o) {
    var rows = o.params.map(function (p) {
      var sch = p.schema || (p.content && p.content[Object.keys(p.content)[0]] && p.content[Object.keys(p.content)[0]].schema) || {};
      var s = deref(sch);
      var chips = constraints(s);
      return el('tr', null,
        el('th', { scope: 'row' }, el('code', { text: p.name })),
        el('td', { 'data-label': 'In', text: p['in'] }),
        el('td', { 'data-label': 'Type' }, el('span', { class: 'type', text: label(sch) }), s.format ? el('span', { class: 'format', text: s.format }) : null),
        el('td', { 'data-label': 'Required' }, p.required ? el('span', { class: 'required', text: 'required' }) : el('span', { class: 'optional', text: 'optional' })),
        el('td', { 'data-label': 'Description' }, p.description ? inline(p.description) : null,
          chips.length ? el('div', { class: 'constraints' }, chips.map(function (c) { return el('span', { class: 'chip', text: c }); })) : null));
    });
    return el('div', { class: 'table-wrap' },
      el('table', { class: 'params' },
        el('thead', null, el('tr', null, ['Name', 'In', 'Type', 'Required', 'Description'].map(function (h) {
          return el('th', { scope: 'col', text: h });
        }))),
        el('tbody', null, rows)));
  }

  function contentNodes(content, exampleTitle) {
    var out = [];
    Object.keys(content || {}).forEach(function (type) {
      var media = content[type] || {};
      var stream = /event-stream/.test(type);
      out.push(el('p', { class: 'media' }, el('span', { class: 'media-type', text: type }),
        stream ? ' — a stream of server-sent events; each event’s data is this object:' : null));
      if (media.schema) {
        out.push(schemaBlock(media.schema, { prefix: stream ? 'Event data: ' : 'Schema: ', exampleTitle: stream ? 'Example event data' : exampleTitle }));
      }
    });
    return out;
  }

  function statusClass(code) {
    var c = String(code).charAt(0);
    return 'status s' + (/[1-5]/.test(c) ? c : 'x');
  }

  function responsesNode(o) {
    var responses = o.op.responses || {};
    var groups = [];
    var byKey = {};
    Object.keys(responses).sort().forEach(function (code) {
      var r = deref(responses[code]);
      // Responses that share a body (the error responses, typically) are
      // shown once, with all their codes.
      var key = JSON.stringify(r.content || null) + '|' + (/^2/.test(code) ? code : '');
      if (!byKey[key]) { byKey[key] = { codes: [], resp: r }; groups.push(byKey[key]); }
      byKey[key].codes.push({ code: code, description: r.description });
    });
    return groups.map(function (g) {
      var codes = el('ul', { class: 'codes' }, g.codes.map(function (c) {
        return el('li', null, el('span', { class: statusClass(c.code), text: c.code }), c.description ? ' ' : null,
          c.description ? el('span', { class: 'code-desc' }, inline(c.description)) : null);
      }));
      var success = g.codes.some(function (c) { return /^[123]/.test(c.code); });
      var bodyNodes = g.resp.content ? contentNodes(g.resp.content, 'Example response') : el('p', { class: 'muted', text: 'No body.' });
      if (!success && g.resp.content) {
        // Error bodies are alike and secondary: folded away.
        var names = Object.keys(g.resp.content).map(function (t) {
          var sch = g.resp.content[t] && g.resp.content[t].schema;
          return t + (sch ? ' — ' + label(sch) : '');
        }).join(', ');
        bodyNodes = el('details', { class: 'body-details' }, el('summary', { text: 'Body: ' + names }), bodyNodes);
      }
      return el('div', { class: 'response' }, codes, bodyNodes);
    });
  }

  function renderOperation(o) {
    var op = o.op;
    var panelID = o.anchor + '-body';
    var headID = o.anchor + '-head';
    var secured = (op.security !== undefined ? op.security : spec.security || []).length > 0;
    // In reference mode every operation is open: the heading is no button.
    var toggle = el(reference ? 'div' : 'button', reference ? { class: 'op-toggle static', id: headID } : {
      type: 'button', class: 'op-toggle', id: headID, 'aria-expanded': 'false', 'aria-controls': panelID,
      onclick: function () { setOpen(o, toggle.getAttribute('aria-expanded') !== 'true'); }
    },
      methodBadge(o.method),
      el('span', { class: 'op-title' }, pathNode(o.path), el('span', { class: 'op-summary', text: op.summary || '' })),
      el('span', { class: 'op-flags' },
        secured ? el('span', { class: 'lock', title: 'needs credentials', text: 'auth' }) : null,
        isWebSocket(o) ? el('span', { class: 'lock ws', text: 'WebSocket' }) : null,
        reference ? null : el('span', { class: 'chevron', 'aria-hidden': 'true' })));

    var panel = el('div', { class: 'op-body', id: panelID, role: 'region', 'aria-labelledby': headID, hidden: true });
    if (op.deprecated) panel.appendChild(el('p', { class: 'warning', text: 'Deprecated.' }));
    if (op.description) panel.appendChild(prose(op.description));
    panel.appendChild(el('p', { class: 'op-id' }, 'Operation ', el('code', { text: o.id })));
    if (isWebSocket(o)) panel.appendChild(wsNote(o));
    panel.appendChild(section('Authentication', securityNode(o)));
    if (o.params.length) panel.appendChild(section('Parameters', paramsTable(o)));
    if (op.requestBody) {
      var rb = deref(op.requestBody);
      panel.appendChild(section('Request body' + (rb.required ? ' (required)' : ''),
        [rb.description ? prose(rb.description) : null].concat(contentNodes(rb.content, 'Example request'))));
    }
    panel.appendChild(section('Responses', responsesNode(o)));
    if (!reference && !isWebSocket(o)) panel.appendChild(tryIt(o));

    var article = el('article', { class: 'op op-' + o.method, id: o.anchor }, el('h3', { class: 'op-head' }, toggle), panel);
    o.article = article;
    o.toggle = toggle;
    o.panel = panel;
    return article;
  }

  function wsNote(o) {
    var proto = window.location.protocol === 'https:' ? 'wss://' : 'ws://';
    return el('div', { class: 'note' },
      el('p', null, el('strong', { text: 'This is a WebSocket endpoint' }),
        ', so it has no “Try it” form here: connect with a WebSocket client to ',
        el('code', { text: proto + window.location.host + o.path + '?user_id=<uuid>' }),
        ' (or ', el('code', { text: 'access_token=<token>' }), ').'),
      el('p', null, 'The frames (chat, follow, resume, cancel) and the close codes are described in ',
        el('code', { class: 'doc-ref', text: PROTOCOL_DOC }), ' in the storyd repository.'));
  }

  function setOpen(o, open) {
    if (reference) open = true;
    else o.toggle.setAttribute('aria-expanded', open ? 'true' : 'false');
    o.panel.hidden = !open;
    o.article.classList.toggle('open', open);
  }

  // ---- Try it ----------------------------------------------------------

  function load(key) { try { return window.localStorage.getItem(key) || ''; } catch (e) { return ''; } }
  function save(key, value) {
    try {
      if (value) window.localStorage.setItem(key, value); else window.localStorage.removeItem(key);
    } catch (e) { /* storage disabled: the value lives in the input only */ }
  }

  function newUUID() {
    if (window.crypto && typeof window.crypto.randomUUID === 'function') return window.crypto.randomUUID();
    var b = new Uint8Array(16);
    window.crypto.getRandomValues(b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    var h = Array.prototype.map.call(b, function (x) { return (x + 0x100).toString(16).slice(1); }).join('');
    return h.slice(0, 8) + '-' + h.slice(8, 12) + '-' + h.slice(12, 16) + '-' + h.slice(16, 20) + '-' + h.slice(20);
  }

  function authPanel() {
    var token = el('input', { id: 'auth-token', type: 'password', autocomplete: 'off', spellcheck: 'false',
      placeholder: 'eyJhbGciOi…', value: load(STORE.token), 'aria-describedby': 'auth-hint' });
    var user = el('input', { id: 'auth-user', type: 'text', autocomplete: 'off', spellcheck: 'false',
      placeholder: SAMPLE_UUID, value: load(STORE.user), 'aria-describedby': 'auth-hint' });
    token.addEventListener('input', function () { save(STORE.token, token.value.trim()); });
    user.addEventListener('input', function () { save(STORE.user, user.value.trim()); });
    auth.token = token;
    auth.user = user;
    var show = el('input', { type: 'checkbox', id: 'auth-show',
      onchange: function () { token.type = show.checked ? 'text' : 'password'; } });
    return el('section', { class: 'auth', 'aria-labelledby': 'auth-title' },
      el('h2', { id: 'auth-title', text: 'Credentials for “Try it”' }),
      el('p', { id: 'auth-hint', class: 'muted' },
        'Kept in this browser’s localStorage. A token is sent as ', el('code', { text: 'Authorization: Bearer …' }),
        ', an anonymous id as ', el('code', { text: 'X-User-ID' }), ', with every request sent from this page.'),
      el('div', { class: 'auth-grid' },
        el('div', { class: 'field-input' },
          el('label', { for: 'auth-token', text: 'Access token' }), token,
          el('label', { class: 'check', for: 'auth-show' }, show, ' show')),
        el('div', { class: 'field-input' },
          el('label', { for: 'auth-user', text: 'X-User-ID (anonymous id)' }), user,
          el('div', { class: 'row' },
            el('button', { type: 'button', class: 'btn small', text: 'New anonymous id',
              onclick: function () { user.value = newUUID(); save(STORE.user, user.value); } }),
            el('button', { type: 'button', class: 'btn small ghost', text: 'Forget both',
              onclick: function () { token.value = ''; user.value = ''; save(STORE.token, ''); save(STORE.user, ''); } })))));
  }

  function credentials() {
    return {
      token: auth.token ? auth.token.value.trim() : load(STORE.token),
      user: auth.user ? auth.user.value.trim() : load(STORE.user)
    };
  }

  function shellQuote(s) { return "'" + String(s).replace(/'/g, "'\\''") + "'"; }

  function tryIt(o) {
    var op = o.op;
    var form = el('form', { class: 'try-form', novalidate: true });
    var inputs = [];
    var editable = o.params.filter(function (p) { return p['in'] === 'path' || p['in'] === 'query' || p['in'] === 'header'; });
    if (editable.length) {
      var grid = el('div', { class: 'try-params' });
      editable.forEach(function (p) {
        var s = deref(p.schema || {});
        var id = o.anchor + '-in-' + slug(p['in'] + '-' + p.name);
        var hintID = id + '-hint';
        var input = el('input', {
          id: id, name: p.name, type: 'text', autocomplete: 'off', spellcheck: 'false',
          inputmode: s.type === 'integer' || s.type === 'number' ? 'numeric' : null,
          placeholder: s.format === 'uuid' ? 'uuid' : label(p.schema || {}),
          required: !!p.required, 'aria-describedby': hintID
        });
        inputs.push({ param: p, input: input });
        grid.appendChild(el('div', { class: 'field-input' },
          el('label', { for: id }, el('code', { text: p.name }), ' ', el('span', { class: 'muted', text: p['in'] + (p.required ? ', required' : '') })),
          input,
          el('small', { id: hintID, class: 'hint' }, p.description ? inline(p.description) : label(p.schema || {}))));
      });
      form.appendChild(grid);
    }

    var bodyArea = null;
    var bodySchema = null;
    if (op.requestBody) {
      var rb = deref(op.requestBody);
      var jsonType = Object.keys(rb.content || {}).filter(function (t) { return /json/.test(t); })[0];
      if (jsonType) {
        bodySchema = rb.content[jsonType].schema;
        var areaID = o.anchor + '-body-input';
        var text = JSON.stringify(example(bodySchema, false), null, 2);
        bodyArea = el('textarea', { id: areaID, class: 'code', spellcheck: 'false', autocomplete: 'off',
          rows: String(Math.min(16, Math.max(4, text.split('\n').length + 1))) });
        bodyArea.value = text;
        var fill = function (requiredOnly) {
          return function () { bodyArea.value = JSON.stringify(example(bodySchema, requiredOnly), null, 2); bodyArea.focus(); };
        };
        form.appendChild(el('div', { class: 'field-input' },
          el('label', { for: areaID }, 'Request body ', el('span', { class: 'muted', text: jsonType })),
          bodyArea,
          el('div', { class: 'row' },
            el('button', { type: 'button', class: 'btn small ghost', text: 'Full example', onclick: fill(false) }),
            el('button', { type: 'button', class: 'btn small ghost', text: 'Required fields only', onclick: fill(true) }))));
      }
    }

    var error = el('p', { class: 'form-error', role: 'alert', hidden: true });
    var send = el('button', { type: 'submit', class: 'btn primary', text: 'Send request' });
    var stop = el('button', { type: 'button', class: 'btn danger', text: 'Stop', disabled: true });
    var clearBtn = el('button', { type: 'button', class: 'btn ghost', text: 'Clear', disabled: true });
    form.appendChild(error);
    form.appendChild(el('div', { class: 'row actions' }, send, stop, clearBtn));

    var result = el('div', { class: 'result', hidden: true });
    var statusLine = el('p', { class: 'result-status', role: 'status', 'aria-live': 'polite' });
    var curl = el('pre', { class: 'code curl', tabindex: '0' });
    var headers = el('dl', { class: 'headers' });
    var out = el('pre', { class: 'code response-body', tabindex: '0', 'aria-label': 'Response body' });
    var extra = el('div', { class: 'row' });
    result.appendChild(el('p', { class: 'result-title', text: 'Request' }));
    result.appendChild(curl);
    result.appendChild(el('p', { class: 'result-title', text: 'Response' }));
    result.appendChild(statusLine);
    result.appendChild(headers);
    result.appendChild(extra);
    result.appendChild(out);

    var controller = null; // of the request in flight, for Stop
    var active = null; // of the latest request: older ones no longer write

    stop.addEventListener('click', function () { if (controller) controller.abort(); });
    clearBtn.addEventListener('click', function () {
      if (controller) controller.abort();
      result.hidden = true;
      clearBtn.disabled = true;
    });

    form.addEventListener('submit', function (ev) {
      ev.preventDefault();
      error.hidden = true;
      var path = o.path;
      var q = new URLSearchParams();
      var hdrs = {};
      var missing = [];
      inputs.forEach(function (it) {
        var v = it.input.value.trim();
        it.input.removeAttribute('aria-invalid');
        if (!v) {
          if (it.param.required) { missing.push(it.param.name); it.input.setAttribute('aria-invalid', 'true'); }
          return;
        }
        if (it.param['in'] === 'path') path = path.split('{' + it.param.name + '}').join(encodeURIComponent(v));
        else if (it.param['in'] === 'query') q.append(it.param.name, v);
        else hdrs[it.param.name] = v;
      });
      if (missing.length) { return fail('Fill in the required parameter' + (missing.length > 1 ? 's ' : ' ') + missing.join(', ') + '.'); }
      var payload;
      if (bodyArea) {
        var raw = bodyArea.value.trim();
        bodyArea.removeAttribute('aria-invalid');
        if (raw) {
          try { payload = JSON.stringify(JSON.parse(raw)); } catch (e) {
            bodyArea.setAttribute('aria-invalid', 'true');
            return fail('The request body is not valid JSON: ' + e.message);
          }
          hdrs['Content-Type'] = 'application/json';
        }
      }
      var cred = credentials();
      if (cred.token) hdrs.Authorization = 'Bearer ' + cred.token;
      if (cred.user) hdrs['X-User-ID'] = cred.user;
      var stream = !!(op.responses && Object.keys(op.responses).some(function (c) {
        var r = deref(op.responses[c]);
        return r.content && Object.keys(r.content).some(function (t) { return /event-stream/.test(t); });
      }));
      hdrs.Accept = stream ? 'text/event-stream, application/json' : 'application/json';
      var url = path + (q.toString() ? '?' + q.toString() : '');
      run(o.method.toUpperCase(), url, hdrs, payload);
    });

    function fail(msg) {
      error.textContent = msg;
      error.hidden = false;
    }

    function showCurl(method, url, hdrs, payload) {
      var lines = ['curl -sS -N -X ' + method + ' ' + shellQuote(window.location.origin + url)];
      Object.keys(hdrs).forEach(function (k) {
        var v = k === 'Authorization' ? 'Bearer $TOKEN' : hdrs[k];
        lines.push('  -H ' + (k === 'Authorization' ? '"' + k + ': ' + v + '"' : shellQuote(k + ': ' + v)));
      });
      if (payload !== undefined) lines.push('  --data ' + shellQuote(payload));
      curl.textContent = lines.join(' \\\n');
    }

    function run(method, url, hdrs, payload) {
      if (controller) controller.abort();
      var mine = new AbortController();
      controller = mine;
      active = mine;
      showCurl(method, url, hdrs, payload);
      clear(headers);
      clear(extra);
      out.textContent = '';
      statusLine.textContent = 'Sending…';
      statusLine.className = 'result-status';
      result.hidden = false;
      clearBtn.disabled = false;
      stop.disabled = false;
      send.disabled = true;
      var started = performance.now();
      var elapsed = function () { return Math.round(performance.now() - started) + ' ms'; };
      var finish = function () {
        if (controller === mine) { controller = null; stop.disabled = true; send.disabled = false; }
      };
      fetch(url, { method: method, headers: hdrs, body: payload, signal: mine.signal,
        credentials: 'same-origin', cache: 'no-store', redirect: 'follow' })
        .then(function (resp) {
          if (active !== mine) return undefined;
          var ctype = resp.headers.get('content-type') || '';
          statusLine.textContent = '';
          statusLine.appendChild(el('span', { class: statusClass(resp.status), text: String(resp.status) }));
          statusLine.appendChild(document.createTextNode(' ' + (resp.statusText || '') + ' · ' + elapsed()));
          HEADERS_OF_INTEREST.forEach(function (h) {
            var v = resp.headers.get(h);
            if (v !== null) { headers.appendChild(el('dt', { text: h })); headers.appendChild(el('dd', { text: v })); }
          });
          var minted = resp.headers.get('x-user-id');
          if (minted && auth.user && minted !== auth.user.value.trim()) {
            extra.appendChild(el('button', { type: 'button', class: 'btn small', text: 'Use this X-User-ID',
              onclick: function (ev) {
                auth.user.value = minted; save(STORE.user, minted); ev.target.disabled = true; ev.target.textContent = 'X-User-ID saved';
              } }));
          }
          if (/text\/event-stream/.test(ctype) && resp.body && resp.body.getReader) {
            return readStream(resp);
          }
          return resp.text().then(function (text) {
            if (active !== mine) return;
            if (!text) { out.textContent = '(empty body)'; return; }
            if (/json/.test(ctype)) {
              try { out.textContent = JSON.stringify(JSON.parse(text), null, 2); return; } catch (e) { /* shown as is */ }
            }
            out.textContent = text;
          });
        })
        .catch(function (err) {
          if (active !== mine) return;
          if (err && err.name === 'AbortError') {
            if (statusLine.textContent === 'Sending…') statusLine.textContent = 'Stopped before a response.';
            else statusLine.appendChild(document.createTextNode(' · stopped'));
          } else {
            statusLine.textContent = 'Request failed: ' + (err && err.message ? err.message : String(err));
            statusLine.className = 'result-status failed';
          }
        })
        .then(finish, finish);

      // readStream appends each chunk of an event stream as it arrives.
      function readStream(resp) {
        var reader = resp.body.getReader();
        var decoder = new TextDecoder();
        var live = el('span', { class: 'live', text: ' · streaming…' });
        statusLine.appendChild(live);
        function pump() {
          return reader.read().then(function (chunk) {
            if (active !== mine) { reader.cancel().catch(function () {}); return undefined; }
            if (chunk.done) {
              var tail = decoder.decode();
              if (tail) out.appendChild(document.createTextNode(tail));
              live.textContent = ' · stream ended after ' + elapsed();
              return undefined;
            }
            var stick = out.scrollTop + out.clientHeight >= out.scrollHeight - 24;
            out.appendChild(document.createTextNode(decoder.decode(chunk.value, { stream: true })));
            if (stick) out.scrollTop = out.scrollHeight;
            return pump();
          });
        }
        return pump().catch(function (err) {
          if (err && err.name === 'AbortError') { live.textContent = ' · stopped after ' + elapsed(); return undefined; }
          throw err;
        });
      }
    }

    return el('section', { class: 'op-section try' }, el('h4', { text: 'Try it' }), form, result);
  }

  // ---- the page --------------------------------------------------------

  function renderTOC(groups) {
    var toc = document.getElementById('toc');
    clear(toc);
    var filter = el('input', { id: 'toc-filter', type: 'search', placeholder: 'path, summary…', autocomplete: 'off' });
    toc.appendChild(el('div', { class: 'toc-filter' }, el('label', { for: 'toc-filter', text: 'Filter operations' }), filter));
    var empty = el('p', { class: 'muted toc-empty', text: 'No operation matches.', hidden: true });
    groups.forEach(function (g) {
      var list = el('ul');
      g.ops.forEach(function (o) {
        var a = el('a', { href: '#' + o.anchor, title: o.op.summary || '' }, methodBadge(o.method), pathNode(o.path, 'toc-path'));
        // Opens the operation even when the hash is already this one.
        a.addEventListener('click', function () { setOpen(o, true); });
        o.tocItem = el('li', null, a);
        list.appendChild(o.tocItem);
      });
      g.tocGroup = el('div', { class: 'toc-group' }, el('p', { class: 'toc-tag', text: g.name }), list);
      toc.appendChild(g.tocGroup);
    });
    toc.appendChild(empty);
    filter.addEventListener('input', function () {
      var words = filter.value.toLowerCase().split(/\s+/).filter(Boolean);
      var any = false;
      groups.forEach(function (g) {
        var shown = 0;
        g.ops.forEach(function (o) {
          var hay = (o.method + ' ' + o.path + ' ' + (o.op.summary || '') + ' ' + o.id + ' ' + g.name).toLowerCase();
          var match = words.every(function (w) { return hay.indexOf(w) >= 0; });
          o.tocItem.hidden = !match;
          o.article.hidden = !match;
          if (match) shown++;
        });
        g.tocGroup.hidden = !shown;
        g.section.hidden = !shown;
        any = any || shown > 0;
      });
      empty.hidden = any;
    });
  }

  function render() {
    var content = document.getElementById('content');
    var info = spec.info || {};
    var title = info.title ? info.title + ' API' : 'API';
    document.title = title + (reference ? ' — reference' : ' — documentation');
    document.getElementById('brand-title').textContent = title;
    var intro = el('section', { class: 'intro', 'aria-labelledby': 'api-title' },
      el('h1', { id: 'api-title' }, info.title || 'API',
        info.version ? el('span', { class: 'version', text: 'v' + info.version }) : null,
        spec.openapi ? el('span', { class: 'version oas', text: 'OpenAPI ' + spec.openapi }) : null),
      info.summary ? el('p', { class: 'lead' }, inline(info.summary)) : null,
      info.description ? prose(info.description, 'lead') : null,
      el('p', { class: 'muted' }, reference
        ? ['Reference view (read only). To send requests from this page, use the ', el('a', { href: '/docs', text: 'interactive view' }), '.']
        : ['Every operation has a “Try it” form that sends the request to this server. A read-only ',
          el('a', { href: '/redoc', text: 'reference view' }), ' shows all operations expanded.']));
    content.appendChild(intro);
    if (!reference) content.appendChild(authPanel());

    var groups = collect();
    groups.forEach(function (g) { g.ops.forEach(function (o) { ops.push(o); }); });
    var toolbar = reference ? null : el('div', { class: 'row toolbar' },
      el('button', { type: 'button', class: 'btn small ghost', text: 'Expand all', onclick: function () { ops.forEach(function (o) { setOpen(o, true); }); } }),
      el('button', { type: 'button', class: 'btn small ghost', text: 'Collapse all', onclick: function () { ops.forEach(function (o) { setOpen(o, false); }); } }));
    if (toolbar) content.appendChild(toolbar);
    groups.forEach(function (g) {
      var id = 'tag-' + slug(g.name);
      g.section = el('section', { class: 'tag', 'aria-labelledby': id },
        el('h2', { id: id, text: g.name }), g.description ? prose(g.description) : null,
        g.ops.map(renderOperation));
      content.appendChild(g.section);
    });
    renderTOC(groups);
    ops.forEach(function (o) { setOpen(o, reference); });
    if (window.matchMedia && window.matchMedia('(max-width: 860px)').matches) {
      document.getElementById('toc-details').open = false;
    }
    window.addEventListener('hashchange', openFromHash);
    openFromHash();
  }

  function openFromHash() {
    var id = decodeURIComponent(window.location.hash.slice(1));
    if (!id) return;
    ops.forEach(function (o) {
      if (o.anchor === id) {
        setOpen(o, true);
        o.article.scrollIntoView({ block: 'start' });
        o.toggle.focus({ preventScroll: true });
      }
    });
  }

  function markMode() {
    var current = document.getElementById(reference ? 'mode-reference' : 'mode-interactive');
    if (current) current.setAttribute('aria-current', 'page');
    body.classList.add(reference ? 'reference' : 'interactive');
  }

  function start() {
    markMode();
    var status = document.getElementById('status');
    fetch(specURL, { headers: { Accept: 'application/json' }, credentials: 'same-origin', cache: 'no-cache' })
      .then(function (resp) {
        if (!resp.ok) throw new Error('HTTP ' + resp.status + ' ' + resp.statusText);
        return resp.json();
      })
      .then(function (doc) {
        spec = doc;
        render();
        status.hidden = true;
      })
      .catch(function (err) {
        clear(status);
        status.className = 'loading failed';
        append(status, el('p', null, 'Could not load the API description (', String(err && err.message ? err.message : err).replace(/\.+$/, ''), '). The raw document is at ',
          el('a', { href: specURL, text: specURL }), '.'));
      });
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
