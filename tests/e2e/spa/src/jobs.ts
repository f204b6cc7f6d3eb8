// Live job progress over /ws/jobs/{id}: reconnects with a fresh token when the socket
// drops or its token is refused (4401), and sends a renewed token to an open socket.
import { auth, freshToken } from "./auth";
import { config } from "./config";

export interface Progress {
  job_id: string;
  status: string;
  progress: number;
  step: number;
  total_steps: number;
}

const wsBase = config.apiUrl.replace(/^http/, "ws");
const FINISHED = new Set(["complete", "failed", "aborted"]);

export function watchJob(jobId: string, onProgress: (p: Progress) => void): { drop(): void } {
  let socket: WebSocket | null = null;
  let finished = false;
  let attempts = 0;

  const renewed = (user: { access_token: string }): void => {
    if (socket?.readyState === WebSocket.OPEN) {
      socket.send(JSON.stringify({ type: "auth", token: user.access_token }));
    }
  };
  auth.events.addUserLoaded(renewed);

  async function connect(): Promise<void> {
    const token = await freshToken();
    socket = new WebSocket(`${wsBase}/ws/jobs/${jobId}?token=${encodeURIComponent(token)}`);
    socket.onmessage = (event) => {
      attempts = 0;
      const message = JSON.parse(event.data as string) as Progress;
      finished = FINISHED.has(message.status);
      onProgress(message);
    };
    socket.onclose = async (event) => {
      if (finished || event.code === 1000 || event.code === 4404 || attempts >= 5) {
        auth.events.removeUserLoaded(renewed);
        return;
      }
      attempts += 1;
      // 4401 (token expired or refused) or a broken connection: come back with a token
      // renewed through the refresh token, so a long wait never reuses a stale one.
      await auth.signinSilent().catch(() => null);
      setTimeout(() => void connect(), 250 * attempts);
    };
  }

  void connect();
  // For the end-to-end test: break the connection as a network drop would.
  return { drop: () => socket?.close(4000, "dropped") };
}
