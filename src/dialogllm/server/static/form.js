// A form from a graph's input JSON schema (GET /assistants/{id}/schemas): strings,
// numbers, booleans, enums, lists of strings and lists of objects (a cast).

import { el } from "./render.js";

let counter = 0;
const uid = (name) => `f-${name}-${++counter}`;

function resolve(schema, root) {
  if (schema && schema.$ref) {
    const name = schema.$ref.split("/").pop();
    return resolve((root.$defs || root.definitions || {})[name] || {}, root);
  }
  if (schema && schema.allOf && schema.allOf.length === 1) return resolve(schema.allOf[0], root);
  return schema || {};
}

/** The schema without its ``null`` alternative, and whether null is allowed. */
function nonNull(schema, root) {
  schema = resolve(schema, root);
  const options = schema.anyOf || schema.oneOf;
  if (options) {
    const rest = options.filter((o) => o.type !== "null");
    if (rest.length === 1) return [{ ...resolve(rest[0], root), title: schema.title, description: schema.description, default: schema.default }, true];
  }
  return [schema, false];
}

const words = (name) => name.replaceAll("_", " ").replace(/^./, (c) => c.toUpperCase());

function scalarInput(id, name, schema, required) {
  const common = { id, name, required: required || null, "aria-describedby": schema.description ? `${id}-hint` : null };
  if (schema.enum) {
    return el("select", common, schema.enum.map((v) => el("option", { value: v, selected: v === schema.default }, v)));
  }
  if (schema.const !== undefined) return el("input", { ...common, value: schema.const, readonly: true });
  if (schema.type === "boolean") return el("input", { ...common, type: "checkbox", checked: schema.default === true });
  if (schema.type === "integer" || schema.type === "number") {
    return el("input", {
      ...common, type: "number", inputmode: "numeric", step: schema.type === "integer" ? "1" : "any",
      min: schema.minimum, max: schema.maximum, value: schema.default ?? "",
    });
  }
  const long = (schema.maxLength || 0) > 200;
  return el(long ? "textarea" : "input", {
    ...common, type: long ? null : "text", rows: long ? 2 : null,
    minlength: schema.minLength, maxlength: schema.maxLength, value: long ? null : schema.default ?? "",
  }, long ? schema.default ?? "" : null);
}

function readScalar(input, schema) {
  if (schema.type === "boolean") return input.checked;
  const text = input.value.trim();
  if (text === "") return undefined;
  if (schema.type === "integer") return parseInt(text, 10);
  if (schema.type === "number") return parseFloat(text);
  return text;
}

function objectFields(schema, root, prefix) {
  const required = new Set(schema.required || []);
  const fields = [];
  for (const [name, raw] of Object.entries(schema.properties || {})) {
    fields.push(field(`${prefix}${name}`, name, raw, root, required.has(name)));
  }
  return fields;
}

/** One field: {node, read()} where read() is the value (undefined: leave out). */
function field(path, name, raw, root, required) {
  const [schema, nullable] = nonNull(raw, root);
  const id = uid(path.replaceAll(".", "-"));
  const title = schema.title || words(name);
  const hint = schema.description ? el("span", { class: "hint", id: `${id}-hint` }, schema.description) : null;
  if (schema.type === "array") {
    const items = resolve(schema.items || {}, root);
    if (items.type === "object" || items.properties) return listOfObjects(path, title, schema, items, root, nullable);
    const input = el("input", { id, name: path, type: "text", placeholder: "comma, separated" });
    return {
      node: el("div", { class: "field" }, el("label", { for: id }, title), input, hint),
      read: () => {
        const parts = input.value.split(",").map((s) => s.trim()).filter(Boolean);
        return parts.length ? parts : undefined;
      },
    };
  }
  const input = scalarInput(id, path, schema, required && !nullable);
  const label = el("label", { for: id, class: required && !nullable ? "required" : null }, title);
  const node = schema.type === "boolean"
    ? el("div", { class: "field check" }, input, label, hint)
    : el("div", { class: "field" }, label, input, hint);
  return { node, read: () => readScalar(input, schema) };
}

function listOfObjects(path, title, schema, items, root, nullable) {
  const rows = [];
  const list = el("div", { class: "rows" });
  const legend = el("legend", {}, title);
  const add = el("button", { type: "button", class: "secondary" }, `Add ${(items.title || "item").toLowerCase()}`);
  const fieldset = el("fieldset", { class: "list" }, legend,
    schema.description ? el("p", { class: "hint" }, schema.description) : null, list, add);
  const addRow = () => {
    const fields = objectFields(items, root, `${path}.${rows.length}.`);
    const row = { fields };
    const remove = el("button", { type: "button", class: "secondary" }, "Remove");
    row.node = el("div", { class: "row" }, ...fields.map((f) => f.node), remove);
    remove.addEventListener("click", () => {
      rows.splice(rows.indexOf(row), 1);
      row.node.remove();
    });
    rows.push(row);
    list.append(row.node);
    row.node.querySelector("input, select, textarea")?.focus();
  };
  add.addEventListener("click", addRow);
  const names = Object.keys(items.properties || {});
  return {
    node: fieldset,
    read: () => {
      if (!rows.length) return nullable ? undefined : [];
      return rows.map((row) => {
        const value = {};
        row.fields.forEach((f, i) => {
          const v = f.read();
          if (v !== undefined) value[names[i]] = v;
        });
        return value;
      });
    },
  };
}

/** The form of ``schema`` (an object schema): {node, read()} — read() is the input. */
export function schemaForm(schema) {
  const root = schema || {};
  const fields = objectFields(resolve(root, root), root, "");
  const names = Object.keys(resolve(root, root).properties || {});
  return {
    node: el("div", { class: "fields" }, ...fields.map((f) => f.node)),
    read: () => {
      const value = {};
      fields.forEach((f, i) => {
        const v = f.read();
        if (v !== undefined) value[names[i]] = v;
      });
      return value;
    },
  };
}
