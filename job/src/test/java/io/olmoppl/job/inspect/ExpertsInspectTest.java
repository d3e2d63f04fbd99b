package io.olmoppl.job.inspect;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import io.olmoppl.checkpoint.Checkpoint;
import io.olmoppl.checkpoint.TyingRule;
import io.olmoppl.job.report.ScoreSummary;
import io.olmoppl.job.testing.SparkTestBase;
import io.olmoppl.job.tools.ModelFlops;
import io.olmoppl.testing.Refcases;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The model facts of a mixture of experts through the CLI: what {@code inspect} prints for p06
 * (OLMoE), the summary of a {@code score} run on a {@code make-checkpoint} FlexOlmo, the memory
 * figures every model gets, and the FLOPs the bench counts (only the routed experts).
 */
class ExpertsInspectTest extends SparkTestBase {
  @TempDir Path tmp;

  /** p06: 20 wide, 2 layers, 2 heads of 10, 1 kv head, 6 experts of 24, top 2, untied 50304. */
  private static final long P06_ATTENTION =
      20 * 20 + 2 * 10 * 20 + 20 * 20 + 20 + 10; // q,k,v,o,qk-norm

  private static final long P06_EXPERT = 3 * 20 * 24;

  @Test
  void inspectShowsTheExpertsTheActiveParametersAndTheMemory() {
    Cli r = cli("inspect", "--model", Refcases.dir("p06_olmoe_f16").toString(), "--json");
    assertEquals(0, r.code(), r.err());
    JsonObject j = JsonParser.parseString(r.out()).getAsJsonObject();
    long perLayer = P06_ATTENTION + 2 * 20 + 6 * 20 + 6 * P06_EXPERT; // norms, router, experts
    long total = 2 * 50304L * 20 + 2 * perLayer + 20;
    assertEquals(total, j.get("parameters").getAsLong());
    JsonObject experts = j.getAsJsonObject("model").getAsJsonObject("experts");
    assertEquals(6, experts.get("count").getAsInt());
    assertEquals(2, experts.get("top_k").getAsInt());
    assertFalse(experts.get("norm_topk_prob").getAsBoolean());
    assertEquals(total - 2 * 4 * P06_EXPERT, experts.get("active_parameters").getAsLong());
    JsonObject cpu = j.getAsJsonObject("memory").getAsJsonObject("cpu fp32");
    assertEquals(4 * total, cpu.get("weight_bytes").getAsLong(), "float32 weights on CPU");
    assertTrue(cpu.get("activation_bytes").getAsLong() > 0);
    assertEquals(
        cpu.get("weight_bytes").getAsLong() + cpu.get("activation_bytes").getAsLong(),
        cpu.get("total_bytes").getAsLong());
    JsonObject gpu = j.getAsJsonObject("memory").getAsJsonObject("gpu fp16");
    assertEquals(2 * total, gpu.get("weight_bytes").getAsLong(), "fp16 weights on a GPU");

    Cli table = cli("inspect", "--model", Refcases.dir("p06_olmoe_f16").toString());
    assertEquals(0, table.code(), table.err());
    assertTrue(table.out().contains("experts "), table.out());
    assertTrue(table.out().contains("6 per layer, top 2 (weights as routed)"), table.out());
    assertTrue(table.out().contains("memory cpu fp32"), table.out());
    assertTrue(table.out().contains("memory gpu fp16"), table.out());

    Cli dense = cli("inspect", "--model", model(), "--json");
    JsonObject d = JsonParser.parseString(dense.out()).getAsJsonObject();
    assertNull(d.getAsJsonObject("model").get("experts"), "no experts for a dense model");
    assertTrue(d.getAsJsonObject("memory").has("cpu fp32"), "every model gets the memory");
  }

  @Test
  void aMadeFlexOlmoScoresAndItsSummaryCarriesTheExperts() throws Exception {
    Path ckpt = tmp.resolve("flex");
    Cli made =
        makeTinyCheckpoint("flex_olmo", ckpt, "--experts", "4", "--top-k", "3", "--norm-topk-prob");
    assertEquals(0, made.code(), made.err());
    Path in = tmp.resolve("in.jsonl");
    Files.writeString(in, "{\"text\":\"Experts route each token on its own.\"}\n{\"text\":\"\"}\n");
    ScoreSummary s =
        score(
            "--model",
            ckpt.toString(),
            "--input",
            in.toString(),
            "--output",
            tmp.resolve("out").toString(),
            "--output-format",
            "json");
    ScoreSummary.ExpertsInfo e = s.corpus().model().experts();
    assertEquals(new ScoreSummary.ExpertsInfo(4, 3, true, e.activeParameters()), e);
    long expert = 3L * 16 * 32; // --intermediate defaults to 2 x hidden
    assertEquals(s.corpus().model().parameters() - 2 * expert, e.activeParameters());
    assertEquals(1L, s.corpus().status().get("ok"));
    assertTrue(Files.readString(tmp.resolve("out/_report.html")).contains("experts"));

    Cli wrong =
        cli(
            "make-checkpoint",
            "--layout",
            "olmo",
            "--out",
            tmp.resolve("x").toString(),
            "--experts",
            "4");
    assertEquals(2, wrong.code());
    assertTrue(wrong.err().contains("--layout olmoe or flex_olmo"), wrong.err());
  }

  @Test
  void flopsCountTheRouterAndTheRoutedExpertsOnly() {
    Checkpoint c = Checkpoint.open(Refcases.dir("p06_olmoe_f16"), TyingRule.STRICT);
    long t = 100;
    long scored = 60;
    // per position: q, k, v, o; then the router over 6 experts and 2 of the 6 experts
    double attentionPart = 20 * 20 + 2 * 10 * 20 + 20 * 20;
    double expertsPart = 6 * 20 + 2 * P06_EXPERT;
    // multiply-adds of q.k and of p.v over the causal pairs, 2 heads of 10
    double attention = 2 * (t * (t + 1) / 2.0) * 10 * 2;
    // two layers: the first's experts at all 100 positions, the last's at the 60 scored ones
    double layers = 2 * attentionPart * t + expertsPart * (t + scored);
    double want = 2 * (layers + 2 * attention) + 2.0 * scored * 20 * 50304;
    assertEquals(want, ModelFlops.window(c.config(), t, scored), 1e-6 * want);
  }
}
