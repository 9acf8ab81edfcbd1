/**
 * A client broke the protocol or a limit. The connection answers
 * `-ERR Protocol error: <message>` and closes, as Redis does: after a framing
 * error nothing that follows on the stream can be trusted to start a command.
 */
export class ProtocolError extends Error {
  override readonly name = 'ProtocolError';
  constructor(
    /** A short stable label for the metric (no client bytes in it). */
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}
