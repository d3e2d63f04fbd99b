package io.olmoppl.testing;

import ai.djl.Device;
import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import io.olmoppl.checkpoint.Checkpoint;
import io.olmoppl.checkpoint.TyingRule;
import io.olmoppl.model.OlmoModel;
import io.olmoppl.model.Precision;
import io.olmoppl.runtime.DjlSettings;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

/**
 * The reference cases copied unchanged from shared/refcases into test resources: small random OLMo
 * checkpoints with per-token log-probs and per-document NLL computed by implementations independent
 * of this project.
 */
public final class Refcases {
  public static final double TOKEN_TOL = 1e-4;
  public static final double MEAN_NLL_TOL = 1e-5;

  /**
   * The README's bound ("Scoring contract") on how far a document's NLL may move, relative, when it
   * is batched differently: float32 matmuls over other shapes round differently.
   */
  public static final double BATCH_REL_NLL = 1e-6;

  /** The same bound on one token's log-prob, absolute. */
  public static final double BATCH_ABS_TOKEN = 1e-5;

  private Refcases() {}

  /**
   * @return the model of case {@code name}, loaded strictly on CPU in fp32; the caller closes it
   */
  public static OlmoModel cpuModel(String name) {
    DjlSettings.configure();
    Checkpoint ckpt = Checkpoint.open(dir(name), TyingRule.STRICT);
    return OlmoModel.load(ckpt, ckpt, Device.cpu(), Precision.FP32);
  }

  /** One expected result: a text scored with prefix {@code prefix}, window L, stride S. */
  public record Expected(
      String caseName,
      String key,
      String text,
      long[] ids,
      int window,
      int stride,
      String prefix,
      int nScored,
      double nllSum,
      Double meanNll,
      Double ppl,
      Double bitsPerByte,
      int windows,
      double[] tokenLogprobs) {}

  /**
   * @return OLMo-1's tokenizer.json (allenai's GPT-NeoX-derived one), from case p01
   */
  public static Path neoxTokenizer() {
    return dir("p01_olmo_tied_f32").resolve("tokenizer.json");
  }

  /**
   * @return OLMo-2's tokenizer.json (dolma2), from case p03
   */
  public static Path dolma2Tokenizer() {
    return dir("p03_olmo2_untied_dolma2").resolve("tokenizer.json");
  }

  /**
   * @return the directory holding every case
   */
  public static Path root() {
    String dir =
        System.getProperty(
            "olmoppl.refcases"); // set by modules that get this class from the test-jar
    if (dir != null) {
      return Path.of(dir);
    }
    try {
      return Path.of(Refcases.class.getResource("/refcases").toURI());
    } catch (URISyntaxException e) {
      throw new IllegalStateException(e);
    }
  }

  /**
   * @return the case names, sorted
   */
  public static List<String> names() {
    try (Stream<Path> s = Files.list(root())) {
      return s.filter(Files::isDirectory).map(p -> p.getFileName().toString()).sorted().toList();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  public static Path dir(String name) {
    return root().resolve(name);
  }

  public static JsonObject json(String name) {
    try {
      return JsonParser.parseString(Files.readString(dir(name).resolve("expected.json")))
          .getAsJsonObject();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /**
   * @return every windows entry of every text of the case
   */
  public static List<Expected> expected(String name) {
    List<Expected> out = new ArrayList<>();
    for (JsonElement te : json(name).getAsJsonArray("texts")) {
      JsonObject t = te.getAsJsonObject();
      JsonArray idsJ = t.getAsJsonArray("ids");
      long[] ids = new long[idsJ.size()];
      for (int i = 0; i < ids.length; i++) {
        ids[i] = idsJ.get(i).getAsLong();
      }
      for (JsonElement we : t.getAsJsonArray("windows")) {
        JsonObject w = we.getAsJsonObject();
        double[] lps = null;
        if (w.has("token_logprobs")) {
          JsonArray a = w.getAsJsonArray("token_logprobs");
          lps = new double[a.size()];
          for (int i = 0; i < lps.length; i++) {
            lps[i] = a.get(i).getAsDouble();
          }
        }
        out.add(
            new Expected(
                name,
                t.get("key").getAsString(),
                t.get("text").getAsString(),
                ids,
                w.get("L").getAsInt(),
                w.get("S").getAsInt(),
                w.get("prefix").getAsString(),
                w.get("n_scored").getAsInt(),
                w.get("nll_sum").getAsDouble(),
                optD(w, "mean_nll"),
                optD(w, "ppl"),
                optD(w, "bits_per_byte"),
                w.get("windows").getAsInt(),
                lps));
      }
    }
    return out;
  }

  /**
   * @return the case's results grouped by (L, S, prefix): each group is scored with one scorer
   */
  public static java.util.Collection<List<Expected>> groups(String name) {
    return expected(name).stream()
        .collect(
            java.util.stream.Collectors.groupingBy(
                e -> e.window() + "/" + e.stride() + "/" + e.prefix(),
                java.util.TreeMap::new,
                java.util.stream.Collectors.toList()))
        .values();
  }

  /**
   * @return scoring options that reproduce a result: its prefix, window and stride, with per-token
   *     log-probs
   */
  public static io.olmoppl.scoring.ScoringOptions options(Expected e) {
    return io.olmoppl.scoring.ScoringOptions.defaults()
        .withBos(
            e.prefix().equals("eos") ? io.olmoppl.scoring.Bos.EOS : io.olmoppl.scoring.Bos.NONE)
        .withWindow(e.window(), e.stride())
        .withTokenLogprobs(true);
  }

  private static Double optD(JsonObject o, String k) {
    return o.has(k) && !o.get(k).isJsonNull() ? o.get(k).getAsDouble() : null;
  }
}
