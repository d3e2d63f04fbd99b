package io.olmoppl.job.tools;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import io.olmoppl.DjlSettings;
import io.olmoppl.checkpoint.Checkpoint;
import io.olmoppl.checkpoint.CheckpointLayout;
import io.olmoppl.checkpoint.CheckpointMaker;
import io.olmoppl.checkpoint.OlmoConfig;
import io.olmoppl.checkpoint.TyingRule;
import io.olmoppl.job.Args;
import io.olmoppl.model.OlmoModel;
import io.olmoppl.model.Precision;
import io.olmoppl.scoring.PerplexityScorer;
import io.olmoppl.scoring.ScoringOptions;
import io.olmoppl.spark.OlmoPerplexity;
import io.olmoppl.tokenizer.OlmoTokenizer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Encoders;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;

/**
 * Throughput benchmark ({@code scripts/bench}): a random OLMo checkpoint of the given size scored (1) in a bare loop
 * over the scorer and (2) through the Spark DataFrame path on local[*], reported as tokens/s, the model's GFLOP per
 * token, achieved GFLOP/s and the ratio to a ceiling: the fp32 matmul rate measured through the same engine.
 */
public final class Bench {
  private Bench() {}

  public static void main(String[] argv) throws Exception {
    DjlSettings.configure();
    Args a = Args.parse("bench", argv, 0, Set.of("hidden", "layers", "heads", "intermediate", "docs", "doc-words",
        "batch-tokens", "master"), Set.of("no-spark"));
    int hidden = a.integer("hidden", 1024);
    int layers = a.integer("layers", 8);
    int heads = a.integer("heads", 16);
    int inter = a.integer("intermediate", 4 * hidden);
    int docs = a.integer("docs", 32);
    int words = a.integer("doc-words", 300);
    int batchTokens = a.integer("batch-tokens", ScoringOptions.BATCH_TOKENS_DEFAULT);
    Path dir = Files.createTempDirectory("olmo-ppl-bench");
    Path tokTmp = dir.resolve("tok.json");
    try (var in = MakeCheckpointCommand.tokenizer("neox")) {
      Files.copy(in, tokTmp);
    }
    Path ckptDir = dir.resolve("ckpt");
    CheckpointMaker.small(CheckpointLayout.OLMO).withDims(hidden, layers, heads, heads, inter, 2048).withTied(true,
        CheckpointMaker.OutputCopy.NONE).write(ckptDir, tokTmp);
    Checkpoint ckpt = Checkpoint.open(ckptDir, TyingRule.STRICT);
    OlmoConfig c = ckpt.config();
    List<String> texts = texts(docs, words);

    double ceiling = matmulGflops();
    System.out.printf("engine fp32 matmul ceiling (2048^3, %d threads): %.1f GFLOP/s%n",
        ai.djl.pytorch.jni.JniUtils.getNumThreads(), ceiling);
    System.out.printf("model: olmo hidden %d, %d layers, %d heads, intermediate %d, %,d parameters (tied)%n",
        hidden, layers, heads, inter, ckpt.parameterCount());
    ScoringOptions opts = ScoringOptions.defaults().withBatchTokens(batchTokens);
    long tokens;
    double bare;
    try (OlmoModel m = OlmoModel.load(ckpt, ckpt, Device.cpu(), Precision.FP32);
        OlmoTokenizer tok = OlmoTokenizer.load(ckpt.tokenizerJson())) {
      PerplexityScorer s = new PerplexityScorer(m, tok, opts);
      s.score(texts.subList(0, Math.min(4, texts.size()))); // warm-up
      long t0 = System.nanoTime();
      tokens = s.score(texts).stream().mapToLong(d -> d.tokens()).sum();
      bare = tokens / ((System.nanoTime() - t0) / 1e9);
    }
    double avgLen = (double) tokens / docs;
    double gflopPerToken = flopsPerToken(c, avgLen) / 1e9;
    System.out.printf("bare loop: %,d tokens, %.1f tokens/s, %.2f GFLOP/token -> %.1f GFLOP/s = %.0f%% of the"
        + " matmul ceiling%n", tokens, bare, gflopPerToken, bare * gflopPerToken,
        100 * bare * gflopPerToken / ceiling);
    if (!a.flag("no-spark")) {
      SparkSession spark = SparkSession.builder().master(a.get("master", "local[*]")).appName("olmo-ppl bench")
          .config("spark.ui.enabled", "false").config("spark.driver.host", "127.0.0.1")
          .config("spark.driver.bindAddress", "127.0.0.1").getOrCreate();
      try {
        Dataset<Row> df = spark.createDataset(texts, Encoders.STRING()).toDF("text")
            .repartition(spark.sparkContext().defaultParallelism());
        OlmoPerplexity.score(df, ckptDir.toString(), "text", opts).count(); // loads the executor model
        df.cache().count();
        long t0 = System.nanoTime();
        long n = OlmoPerplexity.score(df, ckptDir.toString(), "text", opts).agg(
            org.apache.spark.sql.functions.sum("ppl_tokens")).first().getLong(0);
        double sparkRate = n / ((System.nanoTime() - t0) / 1e9);
        System.out.printf("spark %s: %,d tokens, %.1f tokens/s = %.2fx the bare loop%n",
            spark.sparkContext().master(), n, sparkRate, sparkRate / bare);
      } finally {
        spark.stop();
      }
    }
    System.exit(0);
  }

  /** Forward FLOPs per scored token: 2 x (block matmul params + output projection) + attention scores. */
  static double flopsPerToken(OlmoConfig c, double avgLen) {
    long h = c.hiddenSize();
    long perLayer = h * (h + 2L * c.kvDim()) + h * h + 3L * h * c.intermediateSize();
    double attention = 2.0 * 2.0 * h * avgLen / 2; // q.k and p.v over on average half the (causal) context
    return 2.0 * (perLayer * c.numHiddenLayers() + (double) c.vocabRows() * h) + attention * c.numHiddenLayers();
  }

  static double matmulGflops() {
    try (NDManager m = OlmoModel.engine().newBaseManager()) {
      NDArray x = m.randomNormal(new Shape(2048, 2048));
      NDArray y = m.randomNormal(new Shape(2048, 2048));
      for (int i = 0; i < 2; i++) {
        x.matMul(y).close();
      }
      int reps = 5;
      long t0 = System.nanoTime();
      for (int i = 0; i < reps; i++) {
        x.matMul(y).toFloatArray(); // force completion
      }
      double secs = (System.nanoTime() - t0) / 1e9;
      return reps * 2.0 * 2048 * 2048 * 2048 / secs / 1e9;
    }
  }

  private static List<String> texts(int docs, int words) {
    String[] vocab = ("the of and to in a is that for it as was with be by on not he this are or his from at which"
        + " but have an they you were her she there been one all we their has would when if so no will can more"
        + " data model token corpus perplexity spark executor window stride byte").split(" ");
    java.util.SplittableRandom r = new java.util.SplittableRandom(42);
    List<String> out = new ArrayList<>();
    for (int d = 0; d < docs; d++) {
      StringBuilder sb = new StringBuilder();
      int n = words / 2 + r.nextInt(words);
      for (int w = 0; w < n; w++) {
        sb.append(w == 0 ? "" : " ").append(vocab[r.nextInt(vocab.length)]);
      }
      out.add(sb.toString());
    }
    return out;
  }
}
