package io.olmoppl.job.demo;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import io.olmoppl.batching.ScoringEngine;
import io.olmoppl.checkpoint.Checkpoint;
import io.olmoppl.checkpoint.TyingRule;
import io.olmoppl.job.cli.BundledTokenizers;
import io.olmoppl.model.OlmoModel;
import io.olmoppl.model.Precision;
import io.olmoppl.scoring.DocumentScore;
import io.olmoppl.scoring.PerplexityScorer;
import io.olmoppl.scoring.ScoringOptions;
import io.olmoppl.tokenizer.OlmoTokenizer;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.function.Function;
import java.util.stream.Collectors;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The demo's model learns English: a quick version of its training (fewer chapters, steps and
 * dimensions; about a minute on one core) already scores held-out prose (two chapters of Ruth) well
 * below the same words shuffled, and those well below random characters, through the real CLI
 * (Spark, the written checkpoint, the real tokenizer and scorer).
 */
class DemoTest {
  /**
   * The demo's recipe, scaled down: 60 chapters of Genesis and Exodus, 300 steps of 8 x 64 tokens,
   * C = 64.
   */
  static final DemoTrainer.Spec QUICK =
      new DemoTrainer.Spec(64, 2, 4, 128, 64, 8, 300, 1e-2f, 20, 7, 1, 60);

  @TempDir static Path tmp;
  static Path cache;
  static DemoModel.Trained trained;

  @BeforeAll
  static void train() throws Exception {
    cache = tmp.resolve("cache");
    trained =
        DemoModel.ensure(
            cache,
            QUICK,
            new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8));
    assertNotNull(trained.training(), "the first call trains");
  }

  @Test
  void scorerReadsTheCheckpointAsTrainingLeftIt() throws InterruptedException {
    DemoTrainer.Result r = trained.training();
    Checkpoint ckpt = Checkpoint.open(trained.dir(), TyingRule.STRICT);
    assertTrue(ckpt.tying().tied(), "one tied embedding tensor");
    try (OlmoModel model = OlmoModel.load(ckpt, ckpt, Device.cpu(), Precision.FP32);
        OlmoTokenizer tok = OlmoTokenizer.load(ckpt.tokenizerJson());
        ScoringEngine engine = new ScoringEngine(model, tok)) {
      PerplexityScorer scorer = engine.scorer(ScoringOptions.defaults());
      List<DocumentScore> s = engine.scoreIds(r.checkIds(), new long[r.checkIds().size()], scorer);
      assertEquals(r.checkNll().length, s.size());
      for (int i = 0; i < s.size(); i++) {
        assertEquals(QUICK.seqLen(), s.get(i).tokens(), "row " + i + " is one full window");
        assertEquals(
            r.checkNll()[i],
            s.get(i).nll(),
            1e-4 * r.checkNll()[i],
            "row "
                + i
                + ": the scorer's NLL of"
                + " the written checkpoint vs the trainer's own forward pass");
      }
    }
    assertTrue(
        r.lastLoss() < r.firstLoss() - 4, "training lowered the loss by over 4 nats/token: " + r);
  }

  @Test
  void demoRanksProseBelowShuffledWordsBelowRandomCharacters() throws Exception {
    ByteArrayOutputStream buf = new ByteArrayOutputStream();
    List<DemoCommand.SourceStats> stats;
    try (PrintStream out = new PrintStream(buf, true, StandardCharsets.UTF_8)) {
      stats =
          DemoCommand.run(
              new String[] {
                "demo",
                "--dir",
                tmp.resolve("demo").toString(),
                "--cache",
                cache.toString(),
                "--master",
                "local[2]"
              },
              out,
              QUICK,
              DemoCorpus.heldOut().subList(0, 2));
    }
    String printed = buf.toString(StandardCharsets.UTF_8);
    assertTrue(
        printed.contains("using the trained demo model cached in " + trained.dir()), printed);
    Map<String, DemoCommand.SourceStats> by =
        stats.stream()
            .collect(Collectors.toMap(DemoCommand.SourceStats::source, Function.identity()));
    DemoCommand.SourceStats prose = by.get("prose");
    DemoCommand.SourceStats shuffled = by.get("shuffled");
    DemoCommand.SourceStats random = by.get("random");
    assertEquals(2, prose.documents(), printed);
    // whole words keep their tokens; only the first word of a chapter loses its leading space, and
    // another gains one
    assertEquals(prose.tokens(), shuffled.tokens(), 4.0 * prose.documents(), printed);
    assertTrue(prose.perplexity() * 2 < shuffled.perplexity(), printed);
    assertTrue(shuffled.perplexity() * 20 < random.perplexity(), printed);
    assertTrue(prose.bitsPerByte() + 0.25 < shuffled.bitsPerByte(), printed);
    assertTrue(shuffled.bitsPerByte() + 4 < random.bitsPerByte(), printed);
    assertTrue(printed.contains(DemoCommand.table(stats)), printed);
    assertTrue(Files.isRegularFile(tmp.resolve("demo/output/_summary.json")));
  }

  @Test
  void trainingIsDeterministicAndCachedByWhatItDependsOn() throws Exception {
    DemoTrainer.Spec tiny = new DemoTrainer.Spec(32, 1, 2, 32, 32, 2, 3, 1e-2f, 1, 5, 1, 2);
    PrintStream quiet = new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8);
    DemoModel.Trained a = DemoModel.ensure(tmp.resolve("cache-a"), tiny, quiet);
    DemoModel.Trained b = DemoModel.ensure(tmp.resolve("cache-b"), tiny, quiet);
    assertArrayEquals(
        Files.readAllBytes(a.dir().resolve("model.safetensors")),
        Files.readAllBytes(b.dir().resolve("model.safetensors")),
        "same spec, same weights");
    assertEquals(a.dir().getFileName(), b.dir().getFileName(), "same key");
    assertNull(
        DemoModel.ensure(tmp.resolve("cache-a"), tiny, quiet).training(),
        "the second call reuses the cache");
    DemoTrainer.Spec otherSeed = new DemoTrainer.Spec(32, 1, 2, 32, 32, 2, 3, 1e-2f, 1, 6, 1, 2);
    byte[] tok;
    try (var in = BundledTokenizers.open("neox")) {
      tok = in.readAllBytes();
    }
    assertTrue(
        !DemoModel.key(tiny, tok).equals(DemoModel.key(otherSeed, tok)),
        "the seed is part of the key");
  }
}
