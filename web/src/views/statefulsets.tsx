import { Badge, Events, Loading, ObjLink, Sidebar } from "../common";
import { query, useView } from "../stream";
import type { Claim, Ordinal, Ref, StatefulSetDetail, StatefulSetsView } from "../types";
import { VirtualList } from "../virtual";

type Row = { kind: "ordinal"; o: Ordinal } | { kind: "partition"; at: number; partition: number };

export function StatefulSets(props: { sel: Ref | null }) {
  const { data, state, error } = useView<StatefulSetsView>("/api/stream/statefulsets" + query({ namespace: props.sel?.namespace, name: props.sel?.name }));
  if (!data) return <Loading state={state} error={error} />;
  return (
    <div class="split">
      <Sidebar label="StatefulSets" items={data.items} selected={data.selected?.ref}
        href={(r) => `#/statefulsets/${r.namespace}/${r.name}`} extra={(s) => `${s.ready}/${s.replicas}`} />
      {data.selected ? <Detail d={data.selected} /> : <p class="muted">No StatefulSets. Apply one, e.g. examples/chapter/web-statefulset.yaml.</p>}
    </div>
  );
}

function ClaimCell(props: { c: Claim; ns: string }) {
  const { c } = props;
  if (!c.exists) return <span class="claim missing" data-testid="claim">{c.name} <Badge state="absent">not created</Badge></span>;
  return (
    <span class="claim" data-testid="claim">
      <ObjLink obj={{ kind: "PersistentVolumeClaim", namespace: props.ns, name: c.name }} />{" "}
      <Badge state={c.phase ?? ""} />
      {c.volume && <> → <ObjLink obj={{ kind: "PersistentVolume", name: c.volume }}>{c.volume.slice(0, 12)}…</ObjLink></>}
      {c.capacity && <span class="muted"> {c.capacity}</span>}
    </span>
  );
}

function Detail(props: { d: StatefulSetDetail }) {
  const { d } = props;
  const ns = d.ref.namespace ?? "";
  const rows: Row[] = [];
  for (const o of d.ordinals) {
    if (d.partition !== undefined && d.partition > 0 && o.ordinal === d.firstOrdinal + d.partition) rows.push({ kind: "partition", at: o.ordinal, partition: d.partition });
    rows.push({ kind: "ordinal", o });
  }
  const rolling = d.currentRevision !== d.updateRevision;
  const pct = d.replicas ? Math.round((100 * d.updatedReplicas) / d.replicas) : 100;
  return (
    <section class="detail" aria-labelledby="sts-title">
      <h2 id="sts-title"><ObjLink obj={d.ref} testid="selected-name">{d.ref.namespace}/{d.ref.name}</ObjLink></h2>
      <dl class="facts">
        <div><dt>Ready</dt><dd data-testid="sts-ready">{d.readyReplicas}/{d.replicas}</dd></div>
        <div><dt>Service</dt><dd>{d.serviceName || "—"}</dd></div>
        <div><dt>Pod management</dt><dd>{d.podManagementPolicy}</dd></div>
        <div><dt>Update strategy</dt><dd>{d.updateStrategy}{d.partition !== undefined ? `, partition ${d.partition}` : ""}</dd></div>
        <div><dt>Claims kept</dt><dd>when scaled: {d.whenScaled}, when deleted: {d.whenDeleted}</dd></div>
      </dl>
      <div class="rollout" aria-label="Rollout">
        <div class="progress" role="progressbar" aria-valuemin={0} aria-valuemax={d.replicas} aria-valuenow={d.updatedReplicas}
          aria-label={`${d.updatedReplicas} of ${d.replicas} on the update revision`}>
          <span style={{ width: pct + "%" }} />
        </div>
        <span>
          {rolling ? <>rolling out <code>{d.currentRevision}</code> → <code>{d.updateRevision}</code>: </> : <>revision <code>{d.updateRevision || "—"}</code>: </>}
          {d.updatedReplicas}/{d.replicas} updated{d.rolloutDone ? ", done" : ""}
        </span>
      </div>
      <h3>Ordinals</h3>
      <div class="thead ordinals" aria-hidden="true"><span>#</span><span>Pod</span><span>Status</span><span>Revision</span><span>Node</span><span>Claims</span></div>
      <VirtualList items={rows} rowHeight={40} height={Math.min(rows.length * 40 + 4, 520)} label="Ordinals, in order" testid="ordinals"
        rowKey={(r) => (r.kind === "ordinal" ? "o" + r.o.ordinal : "p")}
        row={(r) =>
          r.kind === "partition" ? (
            <div class="partition" data-testid="partition">partition {r.partition}: ordinals from {r.at} up take the update revision; below it they keep theirs</div>
          ) : (
            <div class={"ordinals row" + (r.o.inRange ? "" : " leaving")} data-testid="ordinal" data-ordinal={r.o.ordinal}>
              <span class="ord">{r.o.ordinal}</span>
              <span>{r.o.pod ? <ObjLink obj={{ kind: "Pod", namespace: ns, name: r.o.podName }} testid="pod-name" /> : <span class="muted" data-testid="pod-name">{r.o.podName}</span>}</span>
              <span>{r.o.pod ? <><Badge state={r.o.pod.status} />{r.o.pod.ready ? " ready" : ""}</> : <Badge state="absent">no pod</Badge>}{!r.o.inRange && " (scaling away)"}</span>
              <span>{r.o.revision ? <><code>{r.o.revision}</code> {r.o.updated ? "updated" : "old"}</> : "—"}</span>
              <span>{r.o.pod?.node ?? "—"}</span>
              <span>{r.o.claims.map((c) => <ClaimCell key={c.name} c={c} ns={ns} />)}</span>
            </div>
          )
        }
      />
      <h3>Retained claims of ordinals scaled away</h3>
      {d.retainedClaims.length ? (
        <ul class="retained" data-testid="retained">
          {d.retainedClaims.map((c) => <li key={c.name}>ordinal {c.ordinal}: <ClaimCell c={c} ns={ns} /></li>)}
        </ul>
      ) : <p class="muted">None.</p>}
      <Events events={d.events} />
    </section>
  );
}
