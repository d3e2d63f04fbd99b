package io.olmoppl.batching;

/**
 * What a request's caller hears as its documents are scored: after each forward batch of the {@link
 * ScoringEngine} that held windows of the request, the documents whose last window it ran, the
 * targets it scored and the UTF-8 bytes of those documents (documents without a window are counted
 * when the request completes). The counts of one request add up to its documents, their bytes and
 * the targets of every window that ran; the last call happens before the request's scores are
 * handed to the caller.
 *
 * <p>Called on the engine's compute thread, so it must be quick and must not block; an exception it
 * throws is logged and ignored.
 */
@FunctionalInterface
public interface BatchProgress {
  /**
   * @param documents documents completed since the last call
   * @param tokens targets scored since the last call
   * @param bytes UTF-8 bytes of the documents completed since the last call
   */
  void scored(long documents, long tokens, long bytes);
}
