import { useEffect, useState } from "preact/hooks";

export type StreamState = "connecting" | "live" | "reconnecting";

// useView follows one view's server-sent events: the server sends the
// whole model at once and again after every change, so the newest
// message is all there is to draw. EventSource reconnects by itself after
// a dropped connection, but gives up for good on some errors (Firefox
// closes a stream that saw no traffic for 5 s after the machine's network
// changed, as it does whenever a pod's network interface comes or goes);
// then useView opens a new one, 1 s later and up to 30 s apart while it
// keeps failing (an expired session).
export function useView<T>(path: string): { data: T | null; state: StreamState; error?: string } {
  const [data, setData] = useState<T | null>(null);
  const [state, setState] = useState<StreamState>("connecting");
  const [error, setError] = useState<string | undefined>();
  useEffect(() => {
    setData(null);
    setState("connecting");
    let es: EventSource | null = null;
    let retry: ReturnType<typeof setTimeout> | undefined;
    let delay = 1000;
    const connect = () => {
      es = new EventSource(path);
      es.addEventListener("view", (e) => {
        setData(JSON.parse((e as MessageEvent).data) as T);
        setState("live");
        setError(undefined);
        delay = 1000;
      });
      es.onerror = () => {
        setState("reconnecting");
        if (es?.readyState !== EventSource.CLOSED) return;
        setError("the stream closed: is the session still valid? Reload, or open a new login URL.");
        es = null;
        retry = setTimeout(connect, delay);
        delay = Math.min(delay * 2, 30000);
      };
    };
    connect();
    return () => { clearTimeout(retry); es?.close(); };
  }, [path]);
  return { data, state, error };
}

export function query(params: Record<string, string | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v) q.set(k, v);
  const s = q.toString();
  return s ? "?" + s : "";
}
