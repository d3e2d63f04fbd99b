package io.olmoppl.job.score;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import io.olmoppl.checkpoint.CheckpointLayout;
import io.olmoppl.checkpoint.writer.CheckpointMaker;
import io.olmoppl.checkpoint.writer.SafetensorsWriter.Tensor;
import io.olmoppl.job.testing.SparkTestBase;
import io.olmoppl.spark.ExecutorModels;
import io.olmoppl.testing.Refcases;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Two training checkpoints of one model (the same config, tokenizer and tensor headers, one weight
 * value apart) give other numbers, so nothing of one may stand for the other: not the row stamp,
 * not the rows {@code --previous} carries, not the executor's cached model, not {@code --cutoffs}.
 */
class OtherWeightsTest extends SparkTestBase {
  private static final CheckpointMaker MAKER =
      CheckpointMaker.small(CheckpointLayout.OLMO)
          .withDims(16, 1, 4, 2, 24, 32)
          .withVocabRows(50304)
          .withSeed(11);

  @TempDir static Path tmp;
  static Path stepA;
  static Path stepB;
  static Path input;
  static Path outA;
  static Path outB;
  static Cli scoredA;
  static Cli scoredB;
  static int loadsAfterA;
  static int loadsAfterB;

  @BeforeAll
  static void twoCheckpointsAndTheirScores() throws Exception {
    Path tok = Refcases.dir("p01_olmo_tied_f32").resolve("tokenizer.json");
    stepA = tmp.resolve("step1000");
    stepB = tmp.resolve("step2000");
    MAKER.write(stepA, tok);
    List<Tensor> t = new ArrayList<>(MAKER.tensors());
    Tensor x = t.get(1); // a projection of the block: every target's log-prob depends on it
    float[] v = x.values().clone();
    v[3] += 1f;
    t.set(1, new Tensor(x.name(), x.dtype(), x.shape(), v));
    MAKER.write(stepB, tok, t);
    input = tmp.resolve("in.jsonl");
    Files.writeString(
        input,
        "{\"id\":1,\"text\":\"the first document of the night\"}\n"
            + "{\"id\":2,\"text\":\"a second one, a little longer than the first\"}\n"
            + "{\"id\":3,\"text\":\"and a third\"}\n");
    outA = tmp.resolve("outA");
    outB = tmp.resolve("outB");
    scoredA = score(stepA, outA, "--buckets", "low:50,high");
    loadsAfterA = ExecutorModels.size();
    scoredB = score(stepB, outB); // same JVM, same Spark application: the executor cache is warm
    loadsAfterB = ExecutorModels.size();
  }

  static Cli score(Path model, Path out, String... more) {
    List<String> a =
        new ArrayList<>(
            List.of(
                "score",
                "--model",
                model.toString(),
                "--input",
                input.toString(),
                "--output",
                out.toString(),
                "--output-format",
                "json",
                "--progress",
                "off"));
    a.addAll(List.of(more));
    return cli(a.toArray(String[]::new));
  }

  static Map<String, JsonObject> byId(Path out) throws Exception {
    Map<String, JsonObject> m = new HashMap<>();
    readJsonLines(out).forEach(r -> m.put(r.get("id").getAsString(), r));
    return m;
  }

  @Test
  void theExecutorCacheLoadsTheOtherCheckpointAndTheStampsDiffer() throws Exception {
    assertEquals(0, scoredA.code(), scoredA.err());
    assertEquals(0, scoredB.code(), scoredB.err());
    assertEquals(loadsAfterA + 1, loadsAfterB, "the second checkpoint is a model of its own");
    Map<String, JsonObject> a = byId(outA);
    Map<String, JsonObject> b = byId(outB);
    assertEquals(3, b.size());
    for (String id : a.keySet()) {
      assertNotEquals(
          a.get(id).get("ppl_nll").getAsDouble(),
          b.get(id).get("ppl_nll").getAsDouble(),
          "row " + id + " scored with the other weights");
      assertNotEquals(
          a.get(id).get("ppl_model").getAsString(), b.get(id).get("ppl_model").getAsString());
    }
    assertNotEquals(
        summary(outA).getAsJsonObject("model").get("fingerprint").getAsString(),
        summary(outB).getAsJsonObject("model").get("fingerprint").getAsString());
  }

  @Test
  void previousScoresOfTheOtherCheckpointAreNotCarried() throws Exception {
    Path out = tmp.resolve("rerunB");
    Cli r = score(stepB, out, "--previous", outA.toString());
    assertEquals(0, r.code(), r.err());
    JsonObject prev = summary(out).getAsJsonObject("previous");
    assertEquals(0, prev.get("carried").getAsLong());
    assertEquals(3, prev.get("scored").getAsLong());
    Map<String, JsonObject> fresh = byId(outB);
    byId(out)
        .forEach(
            (id, row) -> {
              assertEquals(
                  fresh.get(id).get("ppl_nll").getAsDouble(),
                  row.get("ppl_nll").getAsDouble(),
                  1e-9);
              assertEquals(fresh.get(id).get("ppl_model"), row.get("ppl_model"));
            });
  }

  @Test
  void cutoffsOfTheOtherCheckpointAreRefusedBeforeScoring() throws Exception {
    Path out = tmp.resolve("cutB");
    Cli r = score(stepB, out, "--cutoffs", outA.resolve("_summary.json").toString());
    assertEquals(1, r.code(), r.err());
    String stampA = byId(outA).get("1").get("ppl_model").getAsString();
    String stampB = byId(outB).get("1").get("ppl_model").getAsString();
    assertTrue(
        r.err()
                .contains(
                    "was computed from the scores of another model: its ppl_model is " + stampA)
            && r.err().contains("this run's is " + stampB)
            && r.err().contains("--cutoffs-from-other-model"),
        r.err());
    assertFalse(r.err().contains("\tat "), "no stack trace: " + r.err());
    assertFalse(Files.exists(out.resolve("_SUCCESS")), "nothing was written");
    assertTrue(!Files.exists(out) || readJsonLines(out).isEmpty(), "no row was scored");
  }

  @Test
  void cutoffsOfAnotherWindowAreRefused() throws Exception {
    Path out = tmp.resolve("cutWindow");
    Cli r =
        score(stepA, out, "--window", "8", "--cutoffs", outA.resolve("_summary.json").toString());
    assertEquals(1, r.code(), r.err());
    assertTrue(r.err().contains("from this model's scores under other settings"), r.err());
  }

  @Test
  void cutoffsOfTheOtherCheckpointAreAppliedOnlyWhenAskedAndRecorded() throws Exception {
    Path out = tmp.resolve("cutBanyway");
    Cli r =
        score(
            stepB,
            out,
            "--cutoffs",
            outA.resolve("_summary.json").toString(),
            "--cutoffs-from-other-model");
    assertEquals(0, r.code(), r.err());
    assertTrue(r.err().contains("warning: --cutoffs-from-other-model"), r.err());
    JsonObject buckets = summary(out).getAsJsonObject("buckets");
    assertTrue(buckets.get("from_other_model").getAsBoolean());
    assertEquals(
        byId(outA).get("1").get("ppl_model").getAsString(), buckets.get("stamp").getAsString());
    assertTrue(
        Files.readString(out.resolve("_report.html")).contains("--cutoffs-from-other-model"));
    // the same model and settings: applied as before, nothing to record
    Path same = tmp.resolve("cutA");
    assertEquals(
        0, score(stepA, same, "--cutoffs", outA.resolve("_summary.json").toString()).code());
    assertFalse(summary(same).getAsJsonObject("buckets").has("from_other_model"));
  }
}
