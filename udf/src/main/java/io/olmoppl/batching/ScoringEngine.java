package io.olmoppl.batching;

import ai.djl.ndarray.NDManager;
import io.olmoppl.batching.ScoreRequest.Work;
import io.olmoppl.model.OlmoModel;
import io.olmoppl.model.Pass;
import io.olmoppl.model.Passes;
import io.olmoppl.scoring.DocumentScore;
import io.olmoppl.scoring.PerplexityScorer;
import io.olmoppl.scoring.ScoringOptions;
import io.olmoppl.tokenizer.OlmoTokenizer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;
import org.apache.arrow.vector.VarCharVector;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The one scoring driver: one engine per model and device in a JVM. Callers (Spark tasks, tools,
 * tests, or plain threads) hand it texts (an Arrow {@link VarCharVector}, a list of strings) or
 * token ids and get one {@link DocumentScore} per document; one compute thread runs every forward
 * pass, with all of the engine's intra-op threads on CPU or on the GPU.
 *
 * <p>A caller tokenizes its texts and cuts windows in its own thread (so tokenizing overlaps the
 * forward pass of earlier work), then queues the windows. The compute thread takes everything
 * queued, from all callers, sorts it by length and packs it by the padded-token budget ({@link
 * Packing}); a document's score does not depend on its batch companions. The queue is bounded
 * (callers wait while it holds more than {@link #maxQueuedTokens} tokens). A batch that fails is
 * split in halves and retried; a window that fails alone fails the request it belongs to (or, when
 * the engine ran out of memory, gives its document the status {@code out_of_memory}). A cancelled
 * request's queued windows are dropped.
 */
public final class ScoringEngine implements AutoCloseable {
  private static final Logger LOG = LoggerFactory.getLogger(ScoringEngine.class);

  /**
   * Queue bound in input tokens: a few batches' worth, so the compute thread never waits for a
   * caller.
   */
  public static final long QUEUE_TOKENS_DEFAULT = 1L << 16;

  private final OlmoModel model;
  private final OlmoTokenizer tokenizer;
  private final long maxQueuedTokens;
  private final ReentrantLock lock = new ReentrantLock();
  private final Condition workQueued = lock.newCondition();
  private final Condition spaceFreed = lock.newCondition();
  private final List<Work> queue = new ArrayList<>(); // guarded by lock
  private long queuedTokens; // guarded by lock
  private boolean closed; // guarded by lock
  private final Thread worker;
  private final EngineStats stats = new EngineStats();

  /**
   * @param maxQueuedTokens input tokens the queue may hold before callers wait (at least one
   *     request always enters)
   * @param threads intra-op threads for the forward pass (CPU); 0 leaves the engine's setting
   */
  public ScoringEngine(
      OlmoModel model, OlmoTokenizer tokenizer, long maxQueuedTokens, int threads) {
    this.model = model;
    this.tokenizer = tokenizer;
    this.maxQueuedTokens = maxQueuedTokens;
    this.worker = new Thread(() -> run(threads), "olmo-ppl-engine-" + model.device());
    worker.setDaemon(true);
    worker.start();
  }

  /** An engine with the default queue bound that leaves the intra-op threads as they are. */
  public ScoringEngine(OlmoModel model, OlmoTokenizer tokenizer) {
    this(model, tokenizer, QUEUE_TOKENS_DEFAULT, 0);
  }

  public OlmoModel model() {
    return model;
  }

  public OlmoTokenizer tokenizer() {
    return tokenizer;
  }

  /**
   * @return counters of the work done so far
   */
  public EngineStats stats() {
    return stats;
  }

  /**
   * @return a scorer of these options for this engine's model (validates window and stride against
   *     it)
   */
  public PerplexityScorer scorer(ScoringOptions options) {
    return new PerplexityScorer(model.config(), options);
  }

  /**
   * Queues a batch of texts for scoring. Blocks while the queue is full.
   *
   * @param texts the documents (null entries are null texts); read before this method returns
   * @param scorer the scoring options resolved against this engine's model ({@link #scorer})
   * @return the pending request
   * @throws InterruptedException if the caller is interrupted while waiting for queue space
   */
  public ScoreRequest submit(VarCharVector texts, PerplexityScorer scorer)
      throws InterruptedException {
    return submit(texts, scorer, null);
  }

  /**
   * As {@link #submit(VarCharVector, PerplexityScorer)}, telling {@code progress} after each
   * forward batch what of these texts it scored.
   *
   * @param progress called on the compute thread (null: nobody listens)
   */
  public ScoreRequest submit(VarCharVector texts, PerplexityScorer scorer, BatchProgress progress)
      throws InterruptedException {
    int n = texts.getValueCount();
    List<String> strings = new ArrayList<>(n);
    long[] bytes = new long[n];
    for (int i = 0; i < n; i++) {
      if (texts.isNull(i)) {
        strings.add(null);
      } else {
        byte[] b = texts.get(i);
        bytes[i] = b.length;
        strings.add(new String(b, StandardCharsets.UTF_8));
      }
    }
    return enqueue(new ScoreRequest(scorer, tokenizer.encodeAll(strings), bytes, progress));
  }

  /**
   * Queues documents given as token ids. Blocks while the queue is full.
   *
   * @param ids per document, its text token ids (without prefix); null for a null text
   * @param bytes per document, the UTF-8 length of its text
   */
  public ScoreRequest submitIds(List<long[]> ids, long[] bytes, PerplexityScorer scorer)
      throws InterruptedException {
    return enqueue(new ScoreRequest(scorer, ids.toArray(long[][]::new), bytes.clone(), null));
  }

  /** Scores texts and waits: the convenience form of {@link #submit} for one caller. */
  public List<DocumentScore> score(VarCharVector texts, PerplexityScorer scorer)
      throws InterruptedException {
    return submit(texts, scorer).scores();
  }

  /** Scores texts (null entries are null texts) and waits. */
  public List<DocumentScore> score(List<String> texts, PerplexityScorer scorer)
      throws InterruptedException {
    long[] bytes = new long[texts.size()];
    for (int i = 0; i < texts.size(); i++) {
      bytes[i] = PerplexityScorer.utf8Length(texts.get(i));
    }
    return enqueue(new ScoreRequest(scorer, tokenizer.encodeAll(texts), bytes, null)).scores();
  }

  /** Scores documents given as token ids and waits (see {@link #submitIds}). */
  public List<DocumentScore> scoreIds(List<long[]> ids, long[] bytes, PerplexityScorer scorer)
      throws InterruptedException {
    return submitIds(ids, bytes, scorer).scores();
  }

  private ScoreRequest enqueue(ScoreRequest r) throws InterruptedException {
    List<Work> work = r.plan();
    if (work.isEmpty()) {
      return r;
    }
    long tokens = work.stream().mapToLong(w -> w.window().inputLength()).sum();
    lock.lockInterruptibly();
    try {
      while (!closed && !queue.isEmpty() && queuedTokens + tokens > maxQueuedTokens) {
        spaceFreed.await();
      }
      if (closed) {
        throw new IllegalStateException("the scoring engine is closed");
      }
      queue.addAll(work);
      queuedTokens += tokens;
      workQueued.signal();
    } finally {
      lock.unlock();
    }
    return r;
  }

  private void run(int threads) {
    if (threads > 0) {
      ai.djl.pytorch.jni.JniUtils.setNumThreads(threads);
    }
    while (true) {
      List<Work> taken;
      lock.lock();
      try {
        while (queue.isEmpty() && !closed) {
          workQueued.awaitUninterruptibly();
        }
        if (closed) {
          return;
        }
        taken = new ArrayList<>(queue);
        queue.clear();
        queuedTokens = 0;
        spaceFreed.signalAll();
      } finally {
        lock.unlock();
      }
      taken.removeIf(w -> w.request().isDone());
      // one budget per round: the smallest any waiting request asked for
      long budget =
          taken.stream()
              .mapToLong(w -> w.request().scorer().options().batchTokens())
              .min()
              .orElse(1);
      for (List<Work> batch : Passes.batches(taken, w -> w.window().inputLength(), budget)) {
        List<Work> live = batch.stream().filter(w -> !w.request().isDone()).toList();
        if (!live.isEmpty()) {
          runBatch(live);
          // progress per batch: each request of the batch hears what it got (once per request)
          live.stream().map(Work::request).distinct().forEach(ScoreRequest::reportProgress);
        }
      }
    }
  }

  private void runBatch(List<Work> batch) {
    float[][] lp;
    long t0 = System.nanoTime();
    List<Pass> passes = model.passes(batch.stream().map(Work::window).toList());
    try (NDManager bm = model.newBatchManager()) {
      lp = model.logProbs(bm, passes, batch.size());
    } catch (RuntimeException | OutOfMemoryError e) {
      if (batch.size() > 1) {
        LOG.warn(
            "olmo-ppl: a batch of {} windows failed ({}); retrying it in halves",
            batch.size(),
            e.toString());
        runBatch(batch.subList(0, batch.size() / 2));
        runBatch(batch.subList(batch.size() / 2, batch.size()));
      } else {
        batch.get(0).fail(e);
      }
      return;
    }
    stats.record(passes, System.nanoTime() - t0);
    for (int k = 0; k < batch.size(); k++) {
      batch.get(k).deliver(lp[k]);
    }
  }

  /** Stops the compute thread; queued requests fail. Does not close the model. */
  @Override
  public void close() {
    List<Work> left;
    lock.lock();
    try {
      closed = true;
      left = new ArrayList<>(queue);
      queue.clear();
      workQueued.signalAll();
      spaceFreed.signalAll();
    } finally {
      lock.unlock();
    }
    left.forEach(w -> w.request().fail(new IllegalStateException("the engine was closed")));
    try {
      worker.join(60_000);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
