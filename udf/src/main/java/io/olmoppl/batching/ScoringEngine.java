package io.olmoppl.batching;

import ai.djl.ndarray.NDManager;
import io.olmoppl.model.OlmoModel;
import io.olmoppl.model.OlmoModel.Window;
import io.olmoppl.scoring.DocumentScore;
import io.olmoppl.scoring.Packing;
import io.olmoppl.scoring.PerplexityScorer;
import io.olmoppl.scoring.ScoringOptions;
import io.olmoppl.tokenizer.OlmoTokenizer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;
import org.apache.arrow.vector.VarCharVector;
import org.apache.arrow.vector.VectorSchemaRoot;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One scoring engine per model and device in a JVM: callers (Spark tasks, or plain threads) hand it
 * Arrow batches of texts and get Arrow batches of results; one compute thread runs every forward
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

  /** Status of a document whose window could not run even alone for lack of memory. */
  public static final String OUT_OF_MEMORY = "out_of_memory";

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
   * Queues a batch of texts for scoring. Blocks while the queue is full.
   *
   * @param texts the documents (null entries are null texts); read before this method returns
   * @param scorer the scoring options resolved against this engine's model ({@link #scorer})
   * @return the pending request; its result vectors come from {@code texts}' allocator
   * @throws InterruptedException if the caller is interrupted while waiting for queue space
   */
  public Request submit(VarCharVector texts, PerplexityScorer scorer) throws InterruptedException {
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
    long[][] ids = tokenizer.encodeAll(strings);
    Request r = new Request(texts, scorer, ids, bytes);
    List<Work> work = new ArrayList<>();
    long tokens = 0;
    for (int d = 0; d < n; d++) {
      List<Window> plan = scorer.plan(ids[d]);
      r.results[d] = new float[plan.size()][];
      for (int w = 0; w < plan.size(); w++) {
        work.add(new Work(r, d, w, plan.get(w)));
        tokens += plan.get(w).inputLength();
      }
    }
    r.remaining.set(work.size());
    if (work.isEmpty()) {
      r.finish();
      return r;
    }
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

  /**
   * @return a scorer of these options for this engine's model (validates window and stride against
   *     it)
   */
  public PerplexityScorer scorer(ScoringOptions options) {
    return new PerplexityScorer(model, tokenizer, options);
  }

  /** Scores texts and waits: the convenience form of {@link #submit} for one caller. */
  public List<DocumentScore> score(VarCharVector texts, PerplexityScorer scorer)
      throws InterruptedException {
    return submit(texts, scorer).scores();
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
      taken.removeIf(w -> w.request.isDone());
      // one budget per round: the smallest any waiting request asked for
      long budget =
          taken.stream().mapToLong(w -> w.request.scorer.options().batchTokens()).min().orElse(1);
      for (List<Work> batch : Packing.batches(taken, w -> w.window().inputLength(), budget)) {
        List<Work> live = batch.stream().filter(w -> !w.request.isDone()).toList();
        if (!live.isEmpty()) {
          runBatch(live);
        }
      }
    }
  }

  private void runBatch(List<Work> batch) {
    float[][] lp;
    long t0 = System.nanoTime();
    List<OlmoModel.Pass> passes = model.passes(batch.stream().map(Work::window).toList());
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

  /**
   * Messages of allocation failures, lower case: CUDA's ("CUDA out of memory. Tried to allocate
   * ..."), libtorch's CPU allocator on Linux ("DefaultCPUAllocator: can't allocate memory: you
   * tried to allocate N bytes. Error code 12 (Cannot allocate memory)", seen in {@code
   * OutOfMemoryTest}) and where {@code posix_memalign} is not used ("DefaultCPUAllocator: not
   * enough memory: ..."), C++ {@code new}'s "std::bad_alloc", and other allocators' "failed to
   * allocate".
   */
  private static final List<String> OUT_OF_MEMORY_MESSAGES =
      List.of(
          "out of memory",
          "can't allocate memory",
          "cannot allocate memory",
          "not enough memory",
          "bad_alloc",
          "failed to allocate");

  /**
   * @return whether {@code e} or a cause is an allocation failure (Java heap or native)
   */
  static boolean outOfMemory(Throwable e) {
    for (Throwable c = e; c != null; c = c.getCause()) {
      String m = String.valueOf(c.getMessage()).toLowerCase(Locale.ROOT);
      if (c instanceof OutOfMemoryError || OUT_OF_MEMORY_MESSAGES.stream().anyMatch(m::contains)) {
        return true;
      }
    }
    return false;
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
    left.forEach(
        w ->
            w.request.future.completeExceptionally(
                new IllegalStateException("the engine was closed")));
    try {
      worker.join(60_000);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  /** One window of one request: {@code index} in the plan of document {@code doc}. */
  private record Work(Request request, int doc, int index, Window window) {
    void deliver(float[] logProbs) {
      request.results[doc][index] = logProbs;
      if (request.remaining.decrementAndGet() == 0) {
        request.finish();
      }
    }

    void fail(Throwable e) {
      if (outOfMemory(e)) {
        LOG.warn(
            "olmo-ppl: a window of {} tokens does not fit in memory even alone: {}",
            window().inputLength(),
            e.toString());
        request.oom[doc] = true;
        deliver(new float[0]);
      } else {
        request.future.completeExceptionally(e);
      }
    }
  }

  /** A submitted batch of texts. */
  public static final class Request {
    private final VarCharVector texts;
    private final PerplexityScorer scorer;
    private final long[][] ids;
    private final long[] bytes;
    private final float[][][] results;
    private final boolean[] oom;
    private final AtomicInteger remaining = new AtomicInteger();
    private final CompletableFuture<List<DocumentScore>> future = new CompletableFuture<>();

    Request(VarCharVector texts, PerplexityScorer scorer, long[][] ids, long[] bytes) {
      this.texts = texts;
      this.scorer = scorer;
      this.ids = ids;
      this.bytes = bytes;
      this.results = new float[ids.length][][];
      this.oom = new boolean[ids.length];
    }

    private void finish() {
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
                    OUT_OF_MEMORY,
                    s.tokenLogprobs() == null ? null : new double[0])
                : s);
      }
      future.complete(out);
    }

    boolean isDone() {
      return future.isDone();
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

    /**
     * Waits for the scores as an Arrow batch (see {@link ScoreVectors}), allocated from the texts'
     * allocator.
     *
     * @param tokenLogprobs whether to fill the token log-prob list column
     */
    public VectorSchemaRoot result(boolean tokenLogprobs) throws InterruptedException {
      return ScoreVectors.of(scores(), texts.getAllocator(), tokenLogprobs);
    }
  }

  /** Counters for benchmarks and logs: batches, windows, tokens, forward time. */
  public static final class EngineStats {
    private final AtomicLong batches = new AtomicLong();
    private final AtomicLong windows = new AtomicLong();
    private final AtomicLong positions = new AtomicLong();
    private final AtomicLong padded = new AtomicLong();
    private final AtomicLong scored = new AtomicLong();
    private final AtomicLong forwardNanos = new AtomicLong();

    /**
     * @param passes the batch as the model runs it: forward passes of windows packed in rows
     */
    void record(List<OlmoModel.Pass> passes, long nanos) {
      batches.incrementAndGet();
      for (OlmoModel.Pass pass : passes) {
        windows.addAndGet(pass.windows().size());
        positions.addAndGet(pass.positions());
        padded.addAndGet(pass.paddedPositions());
        scored.addAndGet(pass.windows().stream().mapToLong(Window::scored).sum());
      }
      forwardNanos.addAndGet(nanos);
    }

    public long batches() {
      return batches.get();
    }

    public long windows() {
      return windows.get();
    }

    /**
     * @return input positions computed (without padding)
     */
    public long positions() {
      return positions.get();
    }

    /**
     * @return padded positions (rows x row length, summed over the forward passes)
     */
    public long paddedPositions() {
      return padded.get();
    }

    public long scoredTokens() {
      return scored.get();
    }

    public double forwardSeconds() {
      return forwardNanos.get() / 1e9;
    }
  }
}
