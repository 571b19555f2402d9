import { render } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import "./style.css";
import { Badge, YamlContext } from "./common";
import type { Ref } from "./types";
import { StatefulSets } from "./views/statefulsets";
import { DaemonSets } from "./views/daemonsets";
import { Jobs } from "./views/jobs";
import { CronJobs } from "./views/cronjobs";
import { Cluster } from "./views/cluster";

const tabs = [
  { id: "statefulsets", label: "StatefulSets" },
  { id: "daemonsets", label: "DaemonSets" },
  { id: "jobs", label: "Jobs" },
  { id: "cronjobs", label: "CronJobs" },
  { id: "cluster", label: "Cluster" },
];

// Routes live in the hash: #/view[/namespace/name].
function parseHash(): { view: string; ns?: string; name?: string } {
  const parts = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  const view = tabs.some((t) => t.id === parts[0]) ? parts[0] : "statefulsets";
  return { view, ns: parts[1] || undefined, name: parts[2] || undefined };
}

interface Explained {
  reading: string; controller?: string; identity: string; stuck?: string;
  findings: { id: string; severity: string; message: string; fix: string; reference: string }[];
}

const explainable = new Set(["StatefulSet", "DaemonSet", "Job", "CronJob"]);

// Explain shows `quartet explain --live`'s reading of a workload.
function Explain(props: { obj: Ref }) {
  const { obj } = props;
  const [e, setE] = useState<Explained | string>("Reading…");
  useEffect(() => {
    const q = new URLSearchParams({ kind: obj.kind, name: obj.name, namespace: obj.namespace ?? "" });
    fetch("/api/explain?" + q).then(async (r) => setE(r.ok ? await r.json() : `${r.status}: ${await r.text()}`), (err) => setE(String(err)));
  }, [obj.kind, obj.namespace, obj.name]);
  if (typeof e === "string") return <p class="muted">{e}</p>;
  return (
    <section class="explain" aria-label="quartet explain" data-testid="explain">
      <h3>quartet explain</h3>
      <p><b>{e.reading}</b>{e.controller ? ` → ${e.controller}` : ""}: {e.identity}</p>
      {e.stuck && <p class="outcome o-failed">stuck: {e.stuck}</p>}
      {e.findings.length ? (
        <ul>
          {e.findings.map((f) => (
            <li key={f.id}><Badge state={f.severity === "error" ? "failed" : f.severity === "warning" ? "pending" : "next"}>{f.severity}</Badge>{" "}
              <code>{f.id}</code>: {f.message} <i>Fix:</i> {f.fix}</li>
          ))}
        </ul>
      ) : <p class="muted">No findings.</p>}
    </section>
  );
}

function YamlPanel(props: { obj: Ref; onClose: () => void }) {
  const [text, setText] = useState("Loading…");
  const closeRef = useRef<HTMLButtonElement>(null);
  const { obj } = props;
  useEffect(() => {
    const q = new URLSearchParams({ kind: obj.kind, name: obj.name, namespace: obj.namespace ?? "" });
    fetch("/api/yaml?" + q).then(async (r) => setText(r.ok ? await r.text() : `${r.status}: ${await r.text()}`),
      (e) => setText(String(e)));
    closeRef.current?.focus();
    const onKey = (e: KeyboardEvent) => { if (e.key === "Escape") props.onClose(); };
    addEventListener("keydown", onKey);
    return () => removeEventListener("keydown", onKey);
  }, [obj.kind, obj.namespace, obj.name]);
  return (
    <div class="overlay" onClick={props.onClose}>
      <aside class="yaml" role="dialog" aria-modal="true" aria-label={`YAML of ${obj.kind} ${obj.name}`} onClick={(e) => e.stopPropagation()}>
        <header>
          <h2>{obj.kind} {obj.namespace ? obj.namespace + "/" : ""}{obj.name}</h2>
          <button type="button" ref={closeRef} onClick={props.onClose}>Close (Esc)</button>
        </header>
        {explainable.has(obj.kind) && <Explain obj={obj} />}
        <pre data-testid="yaml" tabIndex={0}>{text}</pre>
      </aside>
    </div>
  );
}

function App() {
  const [route, setRoute] = useState(parseHash());
  const [yaml, setYaml] = useState<Ref | null>(null);
  const lastFocus = useRef<HTMLElement | null>(null);
  useEffect(() => {
    const on = () => setRoute(parseHash());
    addEventListener("hashchange", on);
    return () => removeEventListener("hashchange", on);
  }, []);
  const open = (r: Ref) => { lastFocus.current = document.activeElement as HTMLElement; setYaml(r); };
  const close = () => { setYaml(null); lastFocus.current?.focus(); };
  const sel = route.name ? { kind: "", namespace: route.ns, name: route.name } : null;
  return (
    <YamlContext.Provider value={open}>
      <a class="skip" href="#main" onClick={(e) => { e.preventDefault(); document.getElementById("main")?.focus(); }}>Skip to content</a>
      <header class="top">
        <h1>quartet</h1>
        <nav aria-label="Views">
          <ul class="tabs">
            {tabs.map((t) => (
              <li key={t.id}><a href={"#/" + t.id} aria-current={route.view === t.id ? "page" : undefined} data-testid={"tab-" + t.id}>{t.label}</a></li>
            ))}
          </ul>
        </nav>
      </header>
      <main id="main" tabIndex={-1}>
        {route.view === "statefulsets" && <StatefulSets sel={sel} />}
        {route.view === "daemonsets" && <DaemonSets />}
        {route.view === "jobs" && <Jobs sel={sel} />}
        {route.view === "cronjobs" && <CronJobs sel={sel} />}
        {route.view === "cluster" && <Cluster />}
      </main>
      {yaml && <YamlPanel obj={yaml} onClose={close} />}
    </YamlContext.Provider>
  );
}

render(<App />, document.getElementById("app")!);
