package io.olmoppl.spark;

import ai.djl.Device;
import io.olmoppl.checkpoint.Checkpoint;
import io.olmoppl.checkpoint.CheckpointException;
import io.olmoppl.model.OlmoModel;
import io.olmoppl.scoring.PerplexityScorer;
import io.olmoppl.tokenizer.OlmoTokenizer;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The executor's models: one per JVM per {@link ModelSpec#cacheKey()}, built on first use by whichever task comes
 * first, shared by every task thread, closed when the JVM exits. Double-checked locking as in Iceberg's {@code
 * SparkExecutorCache}.
 */
public final class ExecutorModels {
  private static final Logger LOG = LoggerFactory.getLogger(ExecutorModels.class);
  private static final Map<String, Loaded> MODELS = new ConcurrentHashMap<>();
  private static final Object LOCK = new Object();
  private static volatile boolean hookInstalled;

  private ExecutorModels() {}

  /** A loaded model with its tokenizer and the load's cost. */
  public record Loaded(Checkpoint checkpoint, OlmoModel model, OlmoTokenizer tokenizer, double loadSeconds)
      implements AutoCloseable {
    /** @return a scorer for these options (cheap; scorers share the model) */
    public PerplexityScorer scorer(ModelSpec spec) {
      return new PerplexityScorer(model, tokenizer, spec.options());
    }

    @Override
    public void close() {
      model.close();
      tokenizer.close();
    }
  }

  /** Result of {@link #get}: the model and whether this call built it. */
  public record Lease(Loaded loaded, boolean built) {}

  /**
   * @return the JVM's model for {@code spec}, loading it if this is the first request
   * @throws CheckpointException if the checkpoint the executor sees is not the one the driver validated
   */
  public static Lease get(ModelSpec spec) {
    String key = spec.cacheKey();
    Loaded m = MODELS.get(key);
    if (m != null) {
      return new Lease(m, false);
    }
    synchronized (LOCK) {
      m = MODELS.get(key);
      if (m != null) {
        return new Lease(m, false);
      }
      long t0 = System.nanoTime();
      Checkpoint ckpt = Checkpoint.open(Path.of(spec.modelPath()), spec.options().tying());
      if (!ckpt.fingerprint().equals(spec.fingerprint())) {
        throw new CheckpointException("the checkpoint at " + spec.modelPath() + " on this executor has fingerprint "
            + ckpt.fingerprint() + " but the driver validated " + spec.fingerprint() + ". Executors must see the"
            + " same checkpoint files as the driver (a shared path, or --distribution broadcast).");
      }
      OlmoModel model = OlmoModel.load(ckpt, ckpt, Devices.choose(spec.options().device()),
          spec.options().precision());
      OlmoTokenizer tok = OlmoTokenizer.load(ckpt.tokenizerJson());
      double secs = (System.nanoTime() - t0) / 1e9;
      m = new Loaded(ckpt, model, tok, secs);
      MODELS.put(key, m);
      LOG.info("olmo-ppl: loaded model {} ({}) in {} s", ckpt.fingerprint(), ckpt.config().layout().id(),
          String.format("%.2f", secs));
      installShutdownHook();
      return new Lease(m, true);
    }
  }

  private static void installShutdownHook() {
    if (!hookInstalled) {
      hookInstalled = true;
      java.lang.Runtime.getRuntime().addShutdownHook(new Thread(ExecutorModels::closeAll, "olmo-ppl-models-close"));
    }
  }

  /** Closes every cached model (executor shutdown, tests). */
  public static void closeAll() {
    synchronized (LOCK) {
      MODELS.values().forEach(Loaded::close);
      MODELS.clear();
    }
  }

  /** @return number of models this JVM holds */
  public static int size() {
    return MODELS.size();
  }

}
