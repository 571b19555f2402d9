import type { ComponentChildren } from "preact";
import { createContext } from "preact";
import { useContext, useEffect, useState } from "preact/hooks";
import type { Event, Ref } from "./types";
import { age, clock } from "./time";

// The YAML panel is opened from anywhere through this context.
export const YamlContext = createContext<(r: Ref) => void>(() => {});

// ObjLink names an object and opens its YAML.
export function ObjLink(props: { obj: Ref; children?: ComponentChildren; testid?: string }) {
  const open = useContext(YamlContext);
  const { obj } = props;
  return (
    <button type="button" class="link" data-testid={props.testid} title={`${obj.kind} ${obj.namespace ? obj.namespace + "/" : ""}${obj.name}: show YAML`}
      onClick={() => open(obj)}>
      {props.children ?? obj.name}
    </button>
  );
}

// Badge shows a state in words and color together (color alone is not
// enough for everyone).
export function Badge(props: { state: string; children?: ComponentChildren; title?: string }) {
  return <span class={`badge s-${props.state.toLowerCase().replace(/[^a-z]/g, "")}`} title={props.title}>{props.children ?? props.state}</span>;
}

// useNow ticks every second, for ages and countdowns.
export function useNow(): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(t);
  }, []);
  return now;
}

export function Events(props: { events: Event[]; title?: string }) {
  const now = useNow();
  if (!props.events?.length) return <p class="muted">No events.</p>;
  return (
    <section aria-label={props.title ?? "Events"}>
      <h3>{props.title ?? "Events"}</h3>
      <table class="events">
        <thead><tr><th scope="col">Age</th><th scope="col">Type</th><th scope="col">Reason</th><th scope="col">Message</th></tr></thead>
        <tbody>
          {props.events.map((e, i) => (
            <tr key={i}>
              <td title={clock(e.time)}>{age(e.time, now)}{e.count > 1 ? ` (×${e.count})` : ""}</td>
              <td><Badge state={e.type} /></td>
              <td>{e.reason}</td>
              <td>{e.message}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

// Sidebar lists objects to pick from, as links that change the hash.
export function Sidebar<T extends { ref: Ref }>(props: {
  label: string; items: T[]; selected?: Ref | null; href: (r: Ref) => string; extra?: (item: T) => ComponentChildren;
}) {
  if (!props.items.length) return <nav aria-label={props.label} class="side"><p class="muted">None in the cluster.</p></nav>;
  return (
    <nav aria-label={props.label} class="side">
      <ul>
        {props.items.map((it) => {
          const cur = props.selected && props.selected.name === it.ref.name && props.selected.namespace === it.ref.namespace;
          return (
            <li key={it.ref.namespace + "/" + it.ref.name}>
              <a href={props.href(it.ref)} aria-current={cur ? "page" : undefined}>
                <span class="ns">{it.ref.namespace}/</span>{it.ref.name}
                {props.extra && <span class="extra">{props.extra(it)}</span>}
              </a>
            </li>
          );
        })}
      </ul>
    </nav>
  );
}

export function Loading(props: { state: string; error?: string }) {
  return <p class="muted" role="status">{props.error ?? (props.state === "connecting" ? "Connecting…" : "Reconnecting…")}</p>;
}
