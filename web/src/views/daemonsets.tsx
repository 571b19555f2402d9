import { Badge, Loading, ObjLink } from "../common";
import { useView } from "../stream";
import type { DaemonCell, DaemonSetsView, NodeRow } from "../types";
import { VirtualList } from "../virtual";

const words: Record<string, string> = {
  running: "runs (updated)", old: "runs (old revision)", starting: "starting", missing: "wanted, no pod", excluded: "excluded", extra: "leaving",
};

export function DaemonSets() {
  const { data, state, error } = useView<DaemonSetsView>("/api/stream/daemonsets");
  if (!data) return <Loading state={state} error={error} />;
  if (!data.daemonSets.length) return <p class="muted">No DaemonSets. Apply one, e.g. examples/chapter/node-exporter-daemonset.yaml.</p>;
  const cols = `minmax(12rem, 16rem) repeat(${data.daemonSets.length}, minmax(11rem, 1fr))`;
  const rows = data.nodes.map((n, i) => ({ n, cells: data.cells[i] }));
  return (
    <section class="detail wide" aria-label="Nodes by DaemonSets">
      <div class="grid-head" style={{ gridTemplateColumns: cols }} role="row">
        <span role="columnheader">Node</span>
        {data.daemonSets.map((d) => (
          <span role="columnheader" key={d.ref.namespace + "/" + d.ref.name} data-testid="ds-column">
            <ObjLink obj={d.ref}>{d.ref.namespace}/{d.ref.name}</ObjLink>
            <small>desired <b data-testid="ds-desired">{d.desired}</b>, ready {d.ready}, updated {d.updated}{d.misscheduled ? `, misscheduled ${d.misscheduled}` : ""}</small>
            <small>{d.updateStrategy}{d.maxUnavailable ? ` maxUnavailable ${d.maxUnavailable}` : ""}{d.maxSurge ? ` maxSurge ${d.maxSurge}` : ""}</small>
            {d.nodeSelector && <small>nodeSelector {d.nodeSelector}</small>}
            {d.canarySelector && <small>canary nodes {d.canarySelector}</small>}
          </span>
        ))}
      </div>
      <VirtualList items={rows} rowHeight={56} height={Math.min(rows.length * 56 + 4, 640)} label="Nodes" testid="ds-grid"
        rowKey={(r) => r.n.name}
        row={(r) => (
          <div class="grid-row" style={{ gridTemplateColumns: cols }} data-testid="ds-node" data-node={r.n.name}>
            <NodeHeader n={r.n} />
            {r.cells.map((c, j) => <Cell key={j} c={c} />)}
          </div>
        )}
      />
      <p class="legend">
        {Object.entries(words).map(([k, v]) => <Badge key={k} state={k}>{v}</Badge>)}
      </p>
    </section>
  );
}

function NodeHeader(props: { n: NodeRow }) {
  const { n } = props;
  return (
    <span class="node-head">
      <ObjLink obj={{ kind: "Node", name: n.name }} />
      {!n.ready && <Badge state="notready">NotReady</Badge>}
      {n.cordoned && <Badge state="cordoned" title="unschedulable: new pods go elsewhere; daemon pods tolerate it">cordoned</Badge>}
      <small>{[...n.labels, ...n.taints.map((t) => "taint " + t)].join(", ")}</small>
    </span>
  );
}

function Cell(props: { c: DaemonCell }) {
  const { c } = props;
  const pod = c.pods?.[c.pods.length - 1];
  return (
    <span class={"cell c-" + c.state} data-testid="ds-cell" data-state={c.state} title={c.why}>
      <Badge state={c.state}>{words[c.state] ?? c.state}</Badge>
      {pod && <ObjLink obj={{ kind: "Pod", namespace: pod.namespace, name: pod.name }}>{pod.name}</ObjLink>}
      {c.why && <small class="why">{c.why}</small>}
    </span>
  );
}
