/** One server-sent event (https://html.spec.whatwg.org/multipage/server-sent-events.html). */
export interface SseEvent {
  event: string;
  data: string;
  id?: string;
}

/**
 * Parses a byte stream into events as soon as each is complete: a partial event is held only until
 * its terminating blank line arrives, never longer. Handles CRLF, CR and LF line ends, comments,
 * multi-line data, and events split across chunks at any byte (UTF-8 included).
 */
export async function* parseSse(body: AsyncIterable<Uint8Array | string>): AsyncGenerator<SseEvent> {
  const decoder = new TextDecoder();
  let buffer = '';
  let event = '';
  let data: string[] = [];
  let id: string | undefined;
  let sawCr = false;
  for await (const chunk of body) {
    buffer += typeof chunk === 'string' ? chunk : decoder.decode(chunk, { stream: true });
    let start = 0;
    for (let i = 0; i < buffer.length; i++) {
      const c = buffer.charCodeAt(i);
      if (c !== 10 && c !== 13) continue;
      // "\r\n" split across two reads: the "\n" ends nothing new.
      if (c === 10 && sawCr && i === start) {
        sawCr = false;
        start = i + 1;
        continue;
      }
      const line = buffer.slice(start, i);
      sawCr = c === 13;
      if (c === 13 && buffer.charCodeAt(i + 1) === 10) {
        i++;
        sawCr = false;
      }
      start = i + 1;
      if (line === '') {
        if (data.length > 0)
          yield { event: event || 'message', data: data.join('\n'), ...(id !== undefined && { id }) };
        event = '';
        data = [];
        continue;
      }
      if (line.charCodeAt(0) === 58) continue; // ':' comment / keep-alive
      const colon = line.indexOf(':');
      const field = colon === -1 ? line : line.slice(0, colon);
      let value = colon === -1 ? '' : line.slice(colon + 1);
      if (value.charCodeAt(0) === 32) value = value.slice(1);
      if (field === 'data') data.push(value);
      else if (field === 'event') event = value;
      else if (field === 'id') id = value;
    }
    buffer = buffer.slice(start);
  }
  buffer += decoder.decode();
  if (buffer !== '' && buffer.startsWith('data:')) data.push(buffer.slice(5).replace(/^ /, ''));
  if (data.length > 0)
    yield { event: event || 'message', data: data.join('\n'), ...(id !== undefined && { id }) };
}
