package io.olmoppl.batching;

import io.olmoppl.model.Window;
import io.olmoppl.scoring.DocumentScore;
import io.olmoppl.scoring.PerplexityScorer;
import io.olmoppl.scoring.Status;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.atomic.AtomicInteger;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A batch of documents submitted to a {@link ScoringEngine}: the compute thread delivers each of
 * its windows' log-probs; when the last arrives, each document's score is collected by its {@link
 * PerplexityScorer} and the waiting caller wakes.
 */
public final class ScoreRequest {
  private static final Logger LOG = LoggerFactory.getLogger(ScoreRequest.class);

  private final PerplexityScorer scorer;
  private final long[][] ids;
  private final long[] bytes;
  private final float[][][] results;
  private final boolean[] oom;
  private final BatchProgress progress; // may be null
  private int[] windowsLeft; // per document; compute thread only (caller thread until queued)
  private long pendingDocuments; // progress not yet reported (same thread rule)
  private long pendingTokens;
  private long pendingBytes;
  private final AtomicInteger remaining = new AtomicInteger();
  private final CompletableFuture<List<DocumentScore>> future = new CompletableFuture<>();

  /**
   * @param ids per document, its text token ids (without prefix); null for a null text
   * @param bytes per document, the UTF-8 length of its text
   * @param progress told as documents are scored (null: nobody listens)
   */
  ScoreRequest(PerplexityScorer scorer, long[][] ids, long[] bytes, BatchProgress progress) {
    this.scorer = scorer;
    this.ids = ids;
    this.bytes = bytes;
    this.results = new float[ids.length][][];
    this.oom = new boolean[ids.length];
    this.progress = progress;
  }

  PerplexityScorer scorer() {
    return scorer;
  }

  /**
   * Plans every document's windows.
   *
   * @return the work to queue, one item per window
   */
  List<Work> plan() {
    List<Work> work = new ArrayList<>();
    windowsLeft = new int[ids.length];
    for (int d = 0; d < ids.length; d++) {
      List<Window> plan = scorer.plan(ids[d]);
      results[d] = new float[plan.size()][];
      windowsLeft[d] = plan.size();
      for (int w = 0; w < plan.size(); w++) {
        work.add(new Work(this, d, w, plan.get(w)));
      }
    }
    remaining.set(work.size());
    if (work.isEmpty()) {
      finish();
    }
    return work;
  }

  /** Counts a delivered window (compute thread): its targets, and its document when complete. */
  private void delivered(int doc, Window window, boolean ran) {
    if (ran) {
      pendingTokens += window.scored();
    }
    if (--windowsLeft[doc] == 0) {
      pendingDocuments++;
      pendingBytes += bytes[doc];
    }
  }

  /** Tells the caller's {@link BatchProgress} what was scored since the last call, if anything. */
  void reportProgress() {
    if (progress == null || (pendingDocuments == 0 && pendingTokens == 0)) {
      return;
    }
    long d = pendingDocuments;
    long t = pendingTokens;
    long b = pendingBytes;
    pendingDocuments = 0;
    pendingTokens = 0;
    pendingBytes = 0;
    try {
      progress.scored(d, t, b);
    } catch (RuntimeException e) {
      LOG.warn("olmo-ppl: a progress listener failed: {}", e.toString());
    }
  }

  private void finish() {
    for (int d = 0; d < ids.length; d++) {
      if (results[d].length == 0) { // no window: complete without a forward pass
        pendingDocuments++;
        pendingBytes += bytes[d];
      }
    }
    reportProgress(); // before the caller wakes: its counts are whole when it sees the scores
    List<DocumentScore> out = new ArrayList<>(ids.length);
    for (int d = 0; d < ids.length; d++) {
      DocumentScore s = scorer.collect(ids[d], bytes[d], results[d]);
      // nothing of a document is reported when one of its windows could not run
      out.add(
          oom[d]
              ? new DocumentScore(
                  0,
                  0.0,
                  s.windows(),
                  bytes[d],
                  Status.OUT_OF_MEMORY,
                  s.tokenLogprobs() == null ? null : new double[0])
              : s);
    }
    future.complete(out);
  }

  boolean isDone() {
    return future.isDone();
  }

  void fail(Throwable e) {
    future.completeExceptionally(e);
  }

  /** Drops this request's queued windows (a killed task); waiting callers get a cancellation. */
  public void cancel() {
    future.cancel(false);
  }

  /**
   * Waits for the scores.
   *
   * @throws InterruptedException if interrupted (the request is then cancelled)
   */
  public List<DocumentScore> scores() throws InterruptedException {
    try {
      return future.get();
    } catch (InterruptedException e) {
      cancel();
      throw e;
    } catch (ExecutionException e) {
      Throwable c = e.getCause();
      if (c instanceof RuntimeException re) {
        throw re;
      }
      if (c instanceof Error err) {
        throw err;
      }
      throw new IllegalStateException(c);
    }
  }

  /** One window of one request: {@code index} in the plan of document {@code doc}. */
  record Work(ScoreRequest request, int doc, int index, Window window) {
    void deliver(float[] logProbs) {
      request.results[doc][index] = logProbs;
      request.delivered(doc, window, logProbs.length > 0);
      if (request.remaining.decrementAndGet() == 0) {
        request.finish();
      }
    }

    void fail(Throwable e) {
      if (OutOfMemory.causedBy(e)) {
        LOG.warn(
            "olmo-ppl: a window of {} tokens does not fit in memory even alone: {}",
            window().inputLength(),
            e.toString());
        request.oom[doc] = true;
        deliver(new float[0]);
      } else {
        request.fail(e);
      }
    }
  }
}
