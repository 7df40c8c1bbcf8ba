// A request to Tandem's REST API over real HTTP, for the API's tests: the answer's status, parsed
// body and headers.

export interface RestAnswer {
  status: number;
  body: any;
  headers: Headers;
}

export interface RestRequest {
  /** Sent as `Authorization: Bearer <key>`; null or absent sends none. */
  key?: string | null;
  /** Sent as JSON. */
  body?: unknown;
  /** Sent as given instead of `body`. */
  raw?: string;
  /** The Content-Type; by default application/json when there is a body, none otherwise; null sends none. */
  contentType?: string | null;
  headers?: Record<string, string>;
}

export async function restCall(baseUrl: string, method: string, path: string, req: RestRequest = {}): Promise<RestAnswer> {
  const payload = req.raw ?? (req.body !== undefined ? JSON.stringify(req.body) : undefined);
  const contentType = req.contentType === undefined ? (payload === undefined ? null : 'application/json') : req.contentType;
  const res = await fetch(`${baseUrl}${path}`, {
    method,
    headers: {
      ...(req.key ? { authorization: `Bearer ${req.key}` } : {}),
      ...(contentType ? { 'content-type': contentType } : {}),
      ...req.headers,
    },
    ...(payload !== undefined ? { body: payload } : {}),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined, headers: res.headers };
}
