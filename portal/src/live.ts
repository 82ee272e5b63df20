// Live updates: the node's Server-Sent Events stream of the signed-in member's
// notifications (GET /events/stream). An EventSource cannot send the bearer token, so each
// connection gets a single-use ticket first (POST /events/ticket); after a drop it
// reconnects with a fresh ticket, resuming after the last event id it saw, with backoff.
// Open pages reload their data when an event arrives (useLoad listens for LIVE_EVENT).
import { get, post } from "./api";

export const LIVE_EVENT = "cofab:live";

export interface LiveEvent {
  id: number;
  type: string;
  subject: string;
  link: string;
  job_id: number | null;
  split_id: number | null;
  dispute_id: number | null;
  data: Record<string, unknown>;
}

type Listener = (event: LiveEvent) => void;

const listeners = new Set<Listener>();
let source: EventSource | null = null;
let lastId: number | null = null;
let retry: ReturnType<typeof setTimeout> | null = null;
let flush: ReturnType<typeof setTimeout> | null = null;
let attempts = 0;
let running = false;
let types: string[] | null = null;

/** Call `fn` for every notification that arrives; returns the unsubscribe function. */
export function onLive(fn: Listener): () => void {
  listeners.add(fn);
  return () => void listeners.delete(fn);
}

function deliver(event: LiveEvent): void {
  lastId = event.id;
  listeners.forEach((fn) => fn(event));
  // a burst of events reloads the page's data once
  if (flush === null) {
    flush = setTimeout(() => {
      flush = null;
      dispatchEvent(new CustomEvent(LIVE_EVENT));
    }, 300);
  }
}

async function connect(): Promise<void> {
  if (!running || typeof EventSource === "undefined") return;
  try {
    types ??= (await get<{ type: string }[]>("/events/types")).map((t) => t.type);
    const { ticket } = await post<{ ticket: string }>("/events/ticket");
    if (!running) return;
    const resume = lastId === null ? "" : `&last_event_id=${lastId}`;
    const es = new EventSource(`/events/stream?ticket=${encodeURIComponent(ticket)}${resume}`);
    source = es;
    const handle = (msg: MessageEvent<string>) => {
      attempts = 0;
      try {
        deliver(JSON.parse(msg.data) as LiveEvent);
      } catch {
        /* not a notification */
      }
    };
    types.forEach((type) => es.addEventListener(type, handle as EventListener));
    es.addEventListener("expired", () => stopLive());
    es.onerror = () => {
      // the ticket is single-use: never let the browser retry with it, reconnect anew
      es.close();
      if (source === es) source = null;
      schedule();
    };
  } catch {
    schedule();
  }
}

function schedule(): void {
  if (!running || retry !== null) return;
  const wait = Math.min(30_000, 1000 * 2 ** attempts) * (0.5 + Math.random() / 2);
  attempts += 1;
  retry = setTimeout(() => {
    retry = null;
    void connect();
  }, wait);
}

/** Start the stream for the signed-in member (again after a sign-in). */
export function startLive(): void {
  stopLive();
  running = true;
  attempts = 0;
  void connect();
}

export function stopLive(): void {
  running = false;
  source?.close();
  source = null;
  if (retry !== null) clearTimeout(retry);
  retry = null;
}
