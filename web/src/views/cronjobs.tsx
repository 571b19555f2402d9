import { Badge, Events, Loading, ObjLink, Sidebar } from "../common";
import { query, useView } from "../stream";
import { inViewerZone, viewerZone } from "../time";
import type { CronJobDetail, CronJobsView, Ref } from "../types";

const words: Record<string, string> = {
  succeeded: "succeeded", failed: "failed", running: "running", skipped: "skipped (Forbid)", replaced: "replaced (Replace)",
  missed: "missed (deadline)", deleted: "Job deleted", norecord: "no record", next: "next", suspended: "suspended",
};

export function CronJobs(props: { sel: Ref | null }) {
  const { data, state, error } = useView<CronJobsView>("/api/stream/cronjobs" + query({ namespace: props.sel?.namespace, name: props.sel?.name }));
  if (!data) return <Loading state={state} error={error} />;
  return (
    <div class="split">
      <Sidebar label="CronJobs" items={data.items} selected={data.selected?.ref}
        href={(r) => `#/cronjobs/${r.namespace}/${r.name}`} extra={(c) => <code>{c.schedule}</code>} />
      {data.selected ? <Detail d={data.selected} /> : <p class="muted">No CronJobs. Apply one, e.g. examples/chapter/db-backup-cronjob.yaml.</p>}
    </div>
  );
}

function Detail(props: { d: CronJobDetail }) {
  const { d } = props;
  const ns = d.ref.namespace ?? "";
  return (
    <section class="detail" aria-labelledby="cj-title">
      <h2 id="cj-title"><ObjLink obj={d.ref} testid="selected-name">{d.ref.namespace}/{d.ref.name}</ObjLink>{d.suspended && <> <Badge state="suspended" /></>}</h2>
      <dl class="facts">
        <div><dt>Schedule</dt><dd><code>{d.schedule}</code></dd></div>
        <div><dt>Time zone</dt><dd data-testid="cj-zone">{d.zone || "—"}{d.timeZone ? " (spec.timeZone)" : " (the controller's)"}</dd></div>
        <div><dt>Your zone</dt><dd>{viewerZone}</dd></div>
        <div><dt>concurrencyPolicy</dt><dd>{d.concurrencyPolicy}</dd></div>
        <div><dt>startingDeadlineSeconds</dt><dd>{d.startingDeadlineSeconds ?? "none"}</dd></div>
        <div><dt>History kept</dt><dd>{d.successfulJobsHistoryLimit} succeeded, {d.failedJobsHistoryLimit} failed</dd></div>
      </dl>
      {d.error && <p class="outcome o-failed" role="alert">{d.error}</p>}
      {d.warnings.map((w, i) => <p key={i} class="warning">{w}</p>)}
      <Timeline d={d} />
      <table class="runs" data-testid="cj-runs">
        <caption>Past and next runs</caption>
        <thead><tr><th scope="col">In {d.zone}</th><th scope="col">In your zone ({viewerZone})</th><th scope="col">Run</th><th scope="col">Job</th><th scope="col">Why</th></tr></thead>
        <tbody>
          {d.runs.map((r) => (
            <tr key={r.time + (r.job ?? "")} data-testid="cj-run" data-state={r.state} class={Date.parse(r.time) > Date.parse(d.now) ? "future" : ""}>
              <td>{r.wall}</td>
              <td>{inViewerZone(r.time)}</td>
              <td><Badge state={r.state}>{words[r.state] ?? r.state}</Badge>{r.manual ? " (by hand)" : ""}</td>
              <td>{r.job ? (["next", "suspended", "deleted", "replaced"].includes(r.state) ? <code>{r.job}</code> : <ObjLink obj={{ kind: "Job", namespace: ns, name: r.job }} />) : "—"}</td>
              <td class="why">{r.why ?? ""}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <Events events={d.events} />
    </section>
  );
}

// Timeline: the runs as marks on one line, now in the middle.
function Timeline(props: { d: CronJobDetail }) {
  const { d } = props;
  if (!d.runs.length) return null;
  const times = d.runs.map((r) => Date.parse(r.time));
  const now = Date.parse(d.now);
  const t0 = Math.min(...times, now), t1 = Math.max(...times, now);
  const span = Math.max(t1 - t0, 60000);
  const W = 760, H = 70;
  const x = (t: number) => 20 + ((t - t0) / span) * (W - 40);
  return (
    <figure class="chart">
      <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-label={`Timeline of ${d.runs.length} runs; the table below lists them`}>
        <line class="axisline" x1={20} x2={W - 20} y1={30} y2={30} />
        <line class="now" x1={x(now)} x2={x(now)} y1={8} y2={52}><title>now</title></line>
        <text x={x(now)} y={64} class="axis" text-anchor="middle">now</text>
        {d.runs.map((r, i) => (
          <circle key={i} class={"mark s-" + r.state} cx={x(Date.parse(r.time))} cy={30} r={7}><title>{r.wall}: {words[r.state] ?? r.state}</title></circle>
        ))}
      </svg>
      <figcaption>{Object.entries(words).filter(([k]) => d.runs.some((r) => r.state === k)).map(([k, v]) => <Badge key={k} state={k}>{v}</Badge>)}</figcaption>
    </figure>
  );
}
