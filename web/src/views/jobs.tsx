import { Badge, Events, Loading, ObjLink, Sidebar, useNow } from "../common";
import { query, useView } from "../stream";
import { clock, duration } from "../time";
import type { JobDetail, JobPod, JobsView, Ref } from "../types";
import { VirtualList } from "../virtual";

export function Jobs(props: { sel: Ref | null }) {
  const { data, state, error } = useView<JobsView>("/api/stream/jobs" + query({ namespace: props.sel?.namespace, name: props.sel?.name }));
  if (!data) return <Loading state={state} error={error} />;
  return (
    <div class="split">
      <Sidebar label="Jobs" items={data.items} selected={data.selected?.ref}
        href={(r) => `#/jobs/${r.namespace}/${r.name}`} extra={(j) => <Badge state={j.status}>{j.completions}</Badge>} />
      {data.selected ? <Detail d={data.selected} /> : <p class="muted">No Jobs. Apply one, e.g. examples/chapter/db-migration-job-runnable.yaml.</p>}
    </div>
  );
}

function Detail(props: { d: JobDetail }) {
  const { d } = props;
  const now = useNow();
  const ns = d.ref.namespace ?? "";
  const target = d.completions ?? 1;
  return (
    <section class="detail" aria-labelledby="job-title">
      <h2 id="job-title">
        <ObjLink obj={d.ref} testid="selected-name">{d.ref.namespace}/{d.ref.name}</ObjLink>{" "}
        <Badge state={d.status} />
        {d.owner && <small> of <ObjLink obj={d.owner}>{d.owner.kind} {d.owner.name}</ObjLink></small>}
      </h2>
      <dl class="facts">
        <div><dt>Completions</dt><dd data-testid="job-succeeded">{d.succeeded}/{d.completions ?? "1 (any pod)"}</dd></div>
        <div><dt>Failures</dt><dd data-testid="job-failed">{d.failed}</dd></div>
        <div><dt>backoffLimit</dt><dd data-testid="job-backoff-limit">{d.backoffLimit}{d.backoffLimitPerIndex !== undefined ? ` (per index ${d.backoffLimitPerIndex})` : ""}</dd></div>
        <div><dt>Active</dt><dd>{d.active} (ready {d.ready}{d.terminating ? `, terminating ${d.terminating}` : ""})</dd></div>
        <div><dt>Parallelism</dt><dd>{d.parallelism}, {d.completionMode}</dd></div>
        <div><dt>restartPolicy</dt><dd>{d.restartPolicy}</dd></div>
        <div><dt>Deadline</dt><dd data-testid="job-deadline">{d.deadline
          ? <>{clock(d.deadline)} ({d.activeDeadlineSeconds}s after start){!d.outcome && Date.parse(d.deadline) > now ? `, ${duration((Date.parse(d.deadline) - now) / 1000)} left` : ""}</>
          : d.activeDeadlineSeconds ? `${d.activeDeadlineSeconds}s after start` : "none"}</dd></div>
        {d.startTime && <div><dt>Ran</dt><dd>{duration(((d.endTime ? Date.parse(d.endTime) : now) - Date.parse(d.startTime)) / 1000)}</dd></div>}
      </dl>
      {d.outcome && (
        <p class={"outcome o-" + d.outcome.type.toLowerCase()} data-testid="job-outcome" role="status">
          <b>{d.outcome.type}</b> at {clock(d.outcome.time)}: {d.outcome.reason ?? ""}{d.outcome.message ? ` — ${d.outcome.message}` : ""}
        </p>
      )}
      {d.backoff && (
        <p class="backoff" data-testid="job-backoff" role="status">
          Back-off after {d.backoff.failures} failure{d.backoff.failures === 1 ? "" : "s"}: waits {duration(d.backoff.delaySeconds)} after the last
          ({clock(d.backoff.lastFailure)}), next try {Date.parse(d.backoff.next) > now ? `in ${duration((Date.parse(d.backoff.next) - now) / 1000)}` : "due now"}.
        </p>
      )}
      <Chart d={d} now={now} target={target} />
      {d.indexes && (
        <section aria-label="Completion indexes">
          <h3>Indexes</h3>
          <ol class="indexes" data-testid="indexes">
            {d.indexes.map((x) => <li key={x.index} class={"ix s-" + x.state} title={`index ${x.index}: ${x.state}`}>{x.index}</li>)}
          </ol>
        </section>
      )}
      <h3>Pods</h3>
      <div class="thead jobpods" aria-hidden="true"><span>Pod</span><span>Index</span><span>Status</span><span>Exit code</span><span>Created</span><span>Finished</span><span>Node</span></div>
      <VirtualList items={d.pods} rowHeight={34} height={Math.min(d.pods.length * 34 + 4, 420)} label="Pods of the Job" testid="job-pods"
        rowKey={(p) => p.name}
        row={(p: JobPod) => (
          <div class="jobpods row" data-testid="job-pod">
            <span><ObjLink obj={{ kind: "Pod", namespace: ns, name: p.name }} /></span>
            <span>{p.index ?? "—"}</span>
            <span><Badge state={p.status} />{p.restarts ? ` ${p.restarts} restarts` : ""}</span>
            <span data-testid="exit-code">{p.exitCode ?? "—"}{p.lastExitCode !== undefined ? ` (before: ${p.lastExitCode})` : ""}{p.reason ? ` ${p.reason}` : ""}</span>
            <span>{clock(p.created)}</span>
            <span>{p.finished ? clock(p.finished) : "—"}</span>
            <span>{p.node ?? "—"}</span>
          </div>
        )}
      />
      <Events events={d.events} />
    </section>
  );
}

// Chart: each pod a bar from creation to finish, and the running count of
// completions and failures, over the Job's life.
function Chart(props: { d: JobDetail; now: number; target: number }) {
  const { d, now } = props;
  const pods = d.pods.slice(-60);
  const t0 = Date.parse(d.created);
  let t1 = d.endTime ? Date.parse(d.endTime) : now;
  for (const p of pods) if (p.finished) t1 = Math.max(t1, Date.parse(p.finished));
  if (d.deadline && !d.outcome) t1 = Math.max(t1, Math.min(Date.parse(d.deadline), now + 60000));
  const span = Math.max(t1 - t0, 1000);
  const W = 720, barH = 10, gap = 4, top = 8;
  const H = top + pods.length * (barH + gap) + 70;
  const x = (t: number) => 40 + ((t - t0) / span) * (W - 60);
  const maxY = Math.max(props.target, d.failed, d.succeeded, 1);
  const yBase = H - 20, yTop = H - 62;
  const y = (v: number) => yBase - (v / maxY) * (yBase - yTop);
  const steps = (key: "succeeded" | "failed") => {
    let pts = `${x(t0)},${y(0)}`;
    let prev = 0;
    for (const s of d.series) { pts += ` ${x(Date.parse(s.time))},${y(prev)} ${x(Date.parse(s.time))},${y(s[key])}`; prev = s[key]; }
    return pts + ` ${x(t1)},${y(prev)}`;
  };
  return (
    <figure class="chart">
      <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-label={`Timeline: ${d.succeeded} succeeded and ${d.failed} failed pods over ${duration(span / 1000)}`}>
        {pods.map((p, i) => {
          const a = Date.parse(p.created), b = p.finished ? Date.parse(p.finished) : t1;
          const cls = p.phase === "Succeeded" ? "ok" : p.phase === "Failed" ? "bad" : "run";
          return (
            <g key={p.name}>
              <rect class={"bar " + cls} x={x(a)} y={top + i * (barH + gap)} width={Math.max(x(b) - x(a), 2)} height={barH}><title>{p.name}: {p.status}{p.exitCode !== undefined ? `, exit ${p.exitCode}` : ""}</title></rect>
              {p.exitCode !== undefined && <text x={x(b) + 3} y={top + i * (barH + gap) + barH - 1} class="exit">exit {p.exitCode}</text>}
            </g>
          );
        })}
        {d.deadline && <line class="deadline" x1={x(Date.parse(d.deadline))} x2={x(Date.parse(d.deadline))} y1={0} y2={H}><title>activeDeadlineSeconds</title></line>}
        <polyline class="line ok" points={steps("succeeded")} />
        <polyline class="line bad" points={steps("failed")} />
        <text x={4} y={y(maxY) + 4} class="axis">{maxY}</text>
        <text x={4} y={yBase} class="axis">0</text>
        <text x={40} y={H - 4} class="axis">{clock(d.created)}</text>
        <text x={W - 20} y={H - 4} class="axis" text-anchor="end">{clock(new Date(t1).toISOString())}</text>
      </svg>
      <figcaption><Badge state="succeeded">completions</Badge> <Badge state="failed">failures</Badge> over time; bars are pods{d.pods.length > pods.length ? ` (the last ${pods.length} of ${d.pods.length})` : ""}.</figcaption>
    </figure>
  );
}
