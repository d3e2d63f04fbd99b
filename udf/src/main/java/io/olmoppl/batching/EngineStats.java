package io.olmoppl.batching;

import io.olmoppl.model.Pass;
import io.olmoppl.model.Window;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Counters of a {@link ScoringEngine} for benchmarks and logs: batches, windows, tokens, forward
 * time.
 */
public final class EngineStats {
  private final AtomicLong batches = new AtomicLong();
  private final AtomicLong windows = new AtomicLong();
  private final AtomicLong positions = new AtomicLong();
  private final AtomicLong padded = new AtomicLong();
  private final AtomicLong scored = new AtomicLong();
  private final AtomicLong forwardNanos = new AtomicLong();

  /**
   * @param passes the batch as the model runs it: forward passes of windows packed in rows
   */
  void record(List<Pass> passes, long nanos) {
    batches.incrementAndGet();
    for (Pass pass : passes) {
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
