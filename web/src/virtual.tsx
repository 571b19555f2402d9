import type { ComponentChildren } from "preact";
import { useLayoutEffect, useRef, useState } from "preact/hooks";

// VirtualList draws only the rows in view (plus a margin), so a list of a
// thousand pods costs as much as a list of thirty. Rows have one fixed
// height. The list is a focusable region that scrolls with the keyboard.
export function VirtualList<T>(props: {
  items: T[];
  rowHeight: number;
  height: number | string;
  label: string;
  row: (item: T, index: number) => ComponentChildren;
  rowKey: (item: T, index: number) => string;
  testid?: string;
}) {
  const { items, rowHeight } = props;
  const ref = useRef<HTMLDivElement>(null);
  const [scrollTop, setScrollTop] = useState(0);
  const [viewport, setViewport] = useState(600);
  useLayoutEffect(() => {
    const el = ref.current;
    if (!el) return;
    const measure = () => setViewport(el.clientHeight || 600);
    measure();
    const ro = new ResizeObserver(measure);
    ro.observe(el);
    return () => ro.disconnect();
  }, []);
  const overscan = 8;
  const first = Math.max(0, Math.floor(scrollTop / rowHeight) - overscan);
  const last = Math.min(items.length, Math.ceil((scrollTop + viewport) / rowHeight) + overscan);
  const rows = [];
  for (let i = first; i < last; i++) {
    rows.push(
      <div role="listitem" class="vrow" key={props.rowKey(items[i], i)} style={{ top: i * rowHeight + "px", height: rowHeight + "px" }}>
        {props.row(items[i], i)}
      </div>,
    );
  }
  return (
    <div
      ref={ref}
      class="vlist"
      tabIndex={0}
      aria-label={props.label}
      data-testid={props.testid}
      data-count={items.length}
      style={{ height: typeof props.height === "number" ? props.height + "px" : props.height }}
      onScroll={(e) => setScrollTop((e.currentTarget as HTMLDivElement).scrollTop)}
    >
      <div role="list" aria-label={props.label} style={{ height: items.length * rowHeight + "px", position: "relative" }}>
        {rows}
      </div>
    </div>
  );
}
