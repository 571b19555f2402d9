import { useEffect, useState } from "preact/hooks";

export type StreamState = "connecting" | "live" | "reconnecting";

// useView follows one view's server-sent events: the server sends the
// whole model at once and again after every change, so the newest
// message is all there is to draw. EventSource reconnects by itself.
export function useView<T>(path: string): { data: T | null; state: StreamState; error?: string } {
  const [data, setData] = useState<T | null>(null);
  const [state, setState] = useState<StreamState>("connecting");
  const [error, setError] = useState<string | undefined>();
  useEffect(() => {
    setData(null);
    setState("connecting");
    const es = new EventSource(path);
    es.addEventListener("view", (e) => {
      setData(JSON.parse((e as MessageEvent).data) as T);
      setState("live");
      setError(undefined);
    });
    es.onerror = () => {
      setState("reconnecting");
      if (es.readyState === EventSource.CLOSED) setError("the stream closed: is the session still valid? Reload, or open a new login URL.");
    };
    return () => es.close();
  }, [path]);
  return { data, state, error };
}

export function query(params: Record<string, string | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v) q.set(k, v);
  const s = q.toString();
  return s ? "?" + s : "";
}
