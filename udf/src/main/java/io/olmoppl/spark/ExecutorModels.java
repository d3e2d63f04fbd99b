package io.olmoppl.spark;

import ai.djl.Device;
import io.olmoppl.batching.ScoringEngine;
import io.olmoppl.checkpoint.Checkpoint;
import io.olmoppl.checkpoint.CheckpointException;
import io.olmoppl.checkpoint.Manifest;
import io.olmoppl.checkpoint.WeightSource;
import io.olmoppl.model.OlmoModel;
import io.olmoppl.tokenizer.OlmoTokenizer;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The executor's models: one per JVM per checkpoint fingerprint (and tying rule, precision, device;
 * the fingerprint covers the weights' content, so a long-lived application never scores a
 * checkpoint with the weights it loaded for another one of the same shapes), built on first use by
 * whichever task comes first, each with the one {@link ScoringEngine} that every task thread hands
 * its rows to, closed when the JVM exits. Double-checked locking as in Iceberg's {@code
 * SparkExecutorCache}.
 */
public final class ExecutorModels {
  private static final Logger LOG = LoggerFactory.getLogger(ExecutorModels.class);
  private static final Map<String, Loaded> MODELS = new ConcurrentHashMap<>();
  private static final Object LOCK = new Object();
  private static volatile boolean hookInstalled;

  private ExecutorModels() {}

  /**
   * A loaded model with its tokenizer and what the load cost.
   *
   * @param bytesReceived weight bytes this JVM received (broadcast blocks, or checkpoint bytes read
   *     from files)
   */
  public record Loaded(
      Manifest manifest,
      OlmoModel model,
      OlmoTokenizer tokenizer,
      ScoringEngine engine,
      double loadSeconds,
      long bytesReceived)
      implements AutoCloseable {
    @Override
    public void close() {
      engine.close();
      model.close();
      tokenizer.close();
    }
  }

  /** Result of {@link #get}: the model and whether this call built it. */
  public record Lease(Loaded loaded, boolean built) {}

  /**
   * @return the JVM's model for {@code spec} on the task's device, loading it on first request
   * @throws CheckpointException if the checkpoint the executor reads is not the one the driver
   *     validated
   */
  public static Lease get(ModelSpec spec) {
    Device device = Devices.forTask(spec.options().device());
    String key = spec.cacheKey() + "/" + device;
    Loaded m = MODELS.get(key);
    if (m != null) {
      return new Lease(m, false);
    }
    synchronized (LOCK) {
      m = MODELS.get(key);
      if (m != null) {
        return new Lease(m, false);
      }
      m = load(spec, device);
      MODELS.put(key, m);
      installShutdownHook();
      return new Lease(m, true);
    }
  }

  private static Loaded load(ModelSpec spec, Device device) {
    long t0 = System.nanoTime();
    Manifest man = spec.manifest().value();
    WeightSource source;
    long bytes;
    if (spec.weights() != null) {
      source = spec.weights();
      bytes = spec.weights().bytes();
    } else {
      java.nio.file.Path local = Localizer.localize(spec.modelPath());
      Checkpoint ckpt = Checkpoint.open(local, spec.options().tying());
      if (!ckpt.fingerprint().equals(spec.fingerprint())) {
        throw new CheckpointException(
            "the checkpoint at "
                + spec.modelPath()
                + " as this executor reads it has"
                + " fingerprint "
                + ckpt.fingerprint()
                + " but the driver validated "
                + spec.fingerprint()
                + ". The"
                + " files changed or differ between machines; executors must read the same checkpoint as the driver"
                + " (a shared path, or --distribution broadcast).");
      }
      source = ckpt;
      bytes = ckpt.uniqueWeightBytes();
    }
    OlmoModel model =
        OlmoModel.load(man.config(), man.tying(), source, device, spec.options().precision());
    OlmoTokenizer tok = OlmoTokenizer.load(man.tokenizerJson());
    ScoringEngine engine =
        new ScoringEngine(model, tok, ScoringEngine.QUEUE_TOKENS_DEFAULT, Threads.engineThreads());
    double secs = (System.nanoTime() - t0) / 1e9;
    LOG.info(
        "olmo-ppl: loaded model {} ({}, {}) on {} in {} s from {} ({} weight bytes)",
        man.fingerprint(),
        man.config().layout().id(),
        man.tying().tied() ? "tied" : "untied",
        device,
        String.format("%.2f", secs),
        spec.distribution(),
        bytes);
    return new Loaded(man, model, tok, engine, secs, bytes);
  }

  private static void installShutdownHook() {
    if (!hookInstalled) {
      hookInstalled = true;
      java.lang.Runtime.getRuntime()
          .addShutdownHook(new Thread(ExecutorModels::closeAll, "olmo-ppl-models-close"));
    }
  }

  /** Closes every cached model (executor shutdown, tests). */
  public static void closeAll() {
    synchronized (LOCK) {
      MODELS.values().forEach(Loaded::close);
      MODELS.clear();
    }
  }

  /**
   * @return the forward-pass seconds of the engines of every model this JVM holds, summed: in
   *     {@code local} mode, where the executor is the driver's JVM, its growth over a job is the
   *     job's forward time
   */
  public static double forwardSeconds() {
    return MODELS.values().stream().mapToDouble(m -> m.engine().stats().forwardSeconds()).sum();
  }

  /**
   * @return number of models this JVM holds
   */
  public static int size() {
    return MODELS.size();
  }
}
