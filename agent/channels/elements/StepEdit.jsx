// The chat UI's form for editing a plan step's arguments: one field per argument, sent back on Save.
import { useState } from "react";

export default function StepEdit() {
  const [values, setValues] = useState(Object.fromEntries(props.fields.map((f) => [f.name, f.value])));
  const set = (name) => (e) => setValues({ ...values, [name]: e.target.value });
  const box = "rounded-md border border-input bg-background px-2 py-1 text-sm";
  return (
    <form className="flex flex-col gap-3 w-full max-w-2xl" onSubmit={(e) => { e.preventDefault(); submitElement({ fields: values }); }}>
      {props.fields.map((f) => (
        <label key={f.name} className="flex flex-col gap-1 text-sm">
          <span className="font-medium">{f.label} <span className="text-muted-foreground font-normal">{f.hint}</span></span>
          {f.multiline
            ? <textarea name={f.name} rows={Math.min(14, f.value.split("\n").length + 1)} className={box + " font-mono text-xs"} value={values[f.name]} onChange={set(f.name)} />
            : <input name={f.name} className={box} value={values[f.name]} onChange={set(f.name)} />}
        </label>
      ))}
      <div className="flex gap-2">
        <button type="submit" className="rounded-md bg-primary text-primary-foreground px-3 py-1 text-sm">Save the edit</button>
        <button type="button" className="rounded-md border border-input px-3 py-1 text-sm" onClick={() => cancelElement()}>Cancel</button>
      </div>
    </form>
  );
}
