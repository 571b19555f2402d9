import { useEffect, useMemo, useState } from "preact/hooks";
import { Badge, Loading, ObjLink, useNow } from "../common";
import { query, useView } from "../stream";
import { age, clock } from "../time";
import type { ClusterView, Event, EventsView, NodePods, PodBrief } from "../types";
import { VirtualList } from "../virtual";

type Row = { kind: "node"; n: NodePods } | { kind: "pod"; p: PodBrief } | { kind: "unscheduled"; count: number };

export function Cluster() {
  const { data, state, error } = useView<ClusterView>("/api/stream/cluster");
  const rows = useMemo(() => {
    const rows: Row[] = [];
    if (!data) return rows;
    for (const n of data.nodes) {
      rows.push({ kind: "node", n });
      for (const p of n.pods) rows.push({ kind: "pod", p });
    }
    if (data.unscheduled.length) {
      rows.push({ kind: "unscheduled", count: data.unscheduled.length });
      for (const p of data.unscheduled) rows.push({ kind: "pod", p });
    }
    return rows;
  }, [data]);
  if (!data) return <Loading state={state} error={error} />;
  return (
    <div class="cluster">
      <section aria-labelledby="nodes-title">
        <h2 id="nodes-title">Nodes and pods <small data-testid="pod-count">{data.podCount} pods on {data.nodes.length} nodes</small></h2>
        <ul class="node-strip">
          {data.nodes.map((n) => (
            <li key={n.name} data-testid="node-chip"><ObjLink obj={{ kind: "Node", name: n.name }} /> <Badge state={n.ready ? "ready" : "notready"}>{n.ready ? "Ready" : "NotReady"}</Badge>{n.cordoned && <Badge state="cordoned">cordoned</Badge>} {n.pods.length} pods</li>
          ))}
        </ul>
        <VirtualList items={rows} rowHeight={30} height="calc(100vh - 22rem)" label="Pods by node" testid="cluster-pods"
          rowKey={(r, i) => (r.kind === "node" ? "n/" + r.n.name : r.kind === "pod" ? r.p.namespace + "/" + r.p.name : "u" + i)}
          row={(r) =>
            r.kind === "node" ? <div class="group">{r.n.name} — {r.n.pods.length} pods{r.n.taints.length ? `, taints ${r.n.taints.join(", ")}` : ""}</div>
            : r.kind === "unscheduled" ? <div class="group">not scheduled — {r.count} pods</div>
            : (
              <div class="podrow" data-testid="cluster-pod" data-pod={r.p.namespace + "/" + r.p.name}>
                <span><span class="ns">{r.p.namespace}/</span><ObjLink obj={{ kind: "Pod", namespace: r.p.namespace, name: r.p.name }} /></span>
                <span><Badge state={r.p.status} />{r.p.ready ? " ready" : ""}</span>
                <span>{r.p.restarts ? `${r.p.restarts} restarts` : ""}</span>
                <span>{r.p.owner ? <ObjLink obj={r.p.owner}>{r.p.owner.kind} {r.p.owner.name}</ObjLink> : ""}</span>
              </div>
            )
          }
        />
      </section>
      <EventsPanel />
    </div>
  );
}

// EventsPanel follows the event stream, filtered on the server.
function EventsPanel() {
  const [filter, setFilter] = useState("");
  const [q, setQ] = useState("");
  useEffect(() => {
    const t = setTimeout(() => setQ(filter.trim()), 200);
    return () => clearTimeout(t);
  }, [filter]);
  const ev = useView<EventsView>("/api/stream/events" + query({ q }));
  const now = useNow();
  return (
    <section aria-labelledby="events-title">
        <h2 id="events-title">Events <small data-testid="events-count">{ev.data ? `${ev.data.matched} of ${ev.data.total}` : ""}</small></h2>
        <label class="filter">Filter <input type="search" value={filter} onInput={(e) => setFilter((e.target as HTMLInputElement).value)}
          placeholder="words, e.g. warning job/db-migration" data-testid="event-filter" /></label>
        {!ev.data && <Loading state={ev.state} error={ev.error} />}
        <VirtualList items={ev.data?.events ?? []} rowHeight={30} height="calc(100vh - 22rem)" label="Events, newest first" testid="events"
          rowKey={(e: Event, i) => i + e.reason + e.object.name + e.time}
          row={(e: Event) => (
            <div class="evrow" data-testid="event">
              <span title={clock(e.time)}>{age(e.time, now)}</span>
              <span><Badge state={e.type} /></span>
              <span>{e.reason}</span>
              <span><ObjLink obj={e.object}>{e.object.kind}/{e.object.name}</ObjLink></span>
              <span class="msg" title={e.message}>{e.message}{e.count > 1 ? ` (×${e.count})` : ""}</span>
            </div>
          )}
        />
      </section>
  );
}
