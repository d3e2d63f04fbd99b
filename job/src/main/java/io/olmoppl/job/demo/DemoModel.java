package io.olmoppl.job.demo;

import com.google.gson.GsonBuilder;
import com.google.gson.JsonObject;
import io.olmoppl.job.cli.BundledTokenizers;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.List;
import java.util.Locale;
import org.apache.commons.io.FileUtils;

/**
 * The demo's trained checkpoint, trained on first use and cached: {@code CACHE/demo-model-KEY/},
 * where KEY hashes everything the weights depend on (the bundled training text, the tokenizer, the
 * {@link DemoTrainer.Spec} and {@link #FORMAT}). A finished checkpoint is moved into place in one
 * step, so an interrupted run leaves no half-written model.
 */
public final class DemoModel {
  /** Bumped when the trainer's algorithm changes in a way the spec does not show. */
  static final int FORMAT = 2;

  static final String TRAINING_JSON = "training.json";

  /**
   * @param dir the checkpoint directory
   * @param training what this call's training did; null when the model came from the cache
   */
  record Trained(Path dir, DemoTrainer.Result training) {}

  private DemoModel() {}

  /**
   * @return {@code $XDG_CACHE_HOME/olmo-ppl}, else {@code ~/.cache/olmo-ppl}
   */
  static Path defaultCache() {
    String xdg = System.getenv("XDG_CACHE_HOME");
    return xdg != null && !xdg.isEmpty()
        ? Path.of(xdg, "olmo-ppl")
        : Path.of(System.getProperty("user.home"), ".cache", "olmo-ppl");
  }

  /**
   * Returns the cached checkpoint for {@code spec}, training it first when absent.
   *
   * @param out progress and the training summary
   * @return the checkpoint directory, and the training result when this call trained it
   */
  static Trained ensure(Path cache, DemoTrainer.Spec spec, PrintStream out) throws IOException {
    byte[] tokenizer;
    try (InputStream in = BundledTokenizers.open("neox")) {
      tokenizer = in.readAllBytes();
    }
    Path dir = cache.resolve("demo-model-" + key(spec, tokenizer));
    if (Files.isRegularFile(dir.resolve(TRAINING_JSON))) {
      out.println("olmo-ppl: using the trained demo model cached in " + dir);
      return new Trained(dir, null);
    }
    Path tmp;
    try {
      Files.createDirectories(cache);
      tmp = Files.createTempDirectory(cache, ".training-");
    } catch (IOException e) {
      throw new IOException(
          "cannot write the demo model cache "
              + cache
              + " ("
              + e
              + "); pass --cache DIR with a"
              + " writable directory",
          e);
    }
    DemoTrainer.Result r;
    try {
      out.println(
          "olmo-ppl: training the demo model once ("
              + spec.steps()
              + " Adam steps on King James Bible"
              + " text, a few minutes on CPU); it is cached in "
              + dir);
      Path tok = tmp.resolve("bundled-tokenizer.json");
      Files.write(tok, tokenizer);
      Path ckpt = tmp.resolve("model");
      List<String> text = DemoCorpus.training();
      if (spec.chapters() > 0) {
        text = text.subList(0, Math.min(spec.chapters(), text.size()));
      }
      r =
          new DemoTrainer(spec, line -> out.println("olmo-ppl: training: " + line))
              .train(text, tok, ckpt);
      JsonObject j = new JsonObject();
      j.addProperty(
          "corpus", "King James Bible (" + DemoCorpus.TRAIN_BOOKS + "), " + DemoCorpus.TRAIN);
      j.addProperty("spec", spec.toString());
      j.addProperty("format", FORMAT);
      j.addProperty("train_tokens", r.trainTokens());
      j.addProperty("active_vocabulary", r.activeVocab());
      j.addProperty("first_loss", r.firstLoss());
      j.addProperty("last_loss", r.lastLoss());
      j.addProperty("seconds", r.seconds());
      j.addProperty("cpu_seconds", r.cpuSeconds());
      Files.writeString(
          ckpt.resolve(TRAINING_JSON),
          new GsonBuilder().setPrettyPrinting().create().toJson(j) + "\n");
      out.println(
          String.format(
              Locale.ROOT,
              "olmo-ppl: trained in %.0f s (%.0f s CPU): loss %.2f -> %.2f" + " nats/token",
              r.seconds(),
              r.cpuSeconds(),
              r.firstLoss(),
              r.lastLoss()));
      try {
        Files.move(ckpt, dir, StandardCopyOption.ATOMIC_MOVE);
      } catch (java.nio.file.FileSystemException e) {
        if (!Files.isRegularFile(
            dir.resolve(TRAINING_JSON))) { // else another run finished the same model first
          throw new IOException(
              "cannot move the trained demo model into "
                  + dir
                  + ": "
                  + e.getMessage()
                  + "; remove that directory or pass --cache DIR",
              e);
        }
      }
    } finally {
      FileUtils.deleteDirectory(tmp.toFile());
    }
    return new Trained(dir, r);
  }

  /**
   * @return the first 16 hex digits of SHA-256 over the training text, tokenizer, spec and format
   */
  static String key(DemoTrainer.Spec spec, byte[] tokenizer) throws IOException {
    try {
      MessageDigest md = MessageDigest.getInstance("SHA-256");
      md.update(DemoCorpus.resource(DemoCorpus.TRAIN));
      md.update(tokenizer);
      md.update((spec + "/format " + FORMAT).getBytes(StandardCharsets.UTF_8));
      return HexFormat.of().formatHex(md.digest()).substring(0, 16);
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("the JVM has no SHA-256", e);
    }
  }
}
