package io.olmoppl.job;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import io.olmoppl.batching.ScoringEngine;
import io.olmoppl.checkpoint.Checkpoint;
import io.olmoppl.job.testing.StandaloneCluster;
import io.olmoppl.model.OlmoModel;
import io.olmoppl.runtime.DjlSettings;
import io.olmoppl.scoring.Bos;
import io.olmoppl.scoring.DocumentScore;
import io.olmoppl.scoring.ScoringOptions;
import io.olmoppl.scoring.Status;
import io.olmoppl.spark.ExecutorModels;
import io.olmoppl.spark.OlmoPerplexity;
import io.olmoppl.spark.OlmoPerplexityTransformer;
import io.olmoppl.spark.ScoreColumns;
import io.olmoppl.testing.Refcases;
import io.olmoppl.tokenizer.OlmoTokenizer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;
import org.apache.spark.api.java.function.MapFunction;
import org.apache.spark.ml.param.ParamMap;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Encoders;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The Spark APIs for library users (DataFrame {@link OlmoPerplexity#score}, the ML {@link
 * OlmoPerplexityTransformer}, the SQL function of {@link OlmoPerplexity#register}) on a real
 * multi-JVM cluster: {@code local-cluster[2,1,1024]} runs a Master and two Workers in this JVM,
 * each Worker launching its executor as a separate JVM (test classpath through {@code
 * spark.executor.extraClassPath}; {@code SPARK_HOME} is a directory with {@code RELEASE} and an
 * empty {@code jars/}, set by surefire). Each API must give the values {@link ScoringEngine}
 * computes in this JVM on the same checkpoint, and score in the executors, never the driver.
 */
class SparkApisClusterTest {
  private static final String CASE = "p01_olmo_tied_f32"; // 256 positions, tied, F32

  /**
   * Non-default options, so that each API must pass them through: several windows for the long
   * text, logprobs on.
   */
  private static final ScoringOptions OPTIONS =
      ScoringOptions.defaults()
          .withWindow(64, 32)
          .withBos(Bos.EOS)
          .withTokenLogprobs(true)
          .withBatchTokens(512);

  private static final double REL = 1e-6;
  private static final String[] TEXTS = {
    "The quick brown fox jumps over the lazy dog.",
    null,
    "",
    "Language models assign probabilities to sequences of tokens. ".repeat(12),
    "Hello",
    "Grüße aus Köln — 東京の天気は晴れです。",
  };

  private static SparkSession spark;
  private static String modelPath;
  private static Dataset<Row> docs;
  private static Map<Integer, DocumentScore> expected;
  private static String fingerprint;

  @BeforeAll
  static void start() throws Exception {
    DjlSettings.configure();
    modelPath = Refcases.dir(CASE).toAbsolutePath().toString();
    // the reference: the same options in this JVM, straight on the model
    Checkpoint ckpt = Checkpoint.open(Path.of(modelPath), OPTIONS.tying());
    fingerprint = ckpt.fingerprint();
    try (OlmoModel model = OlmoModel.load(ckpt, ckpt, Device.cpu(), OPTIONS.precision());
        OlmoTokenizer tok = OlmoTokenizer.load(ckpt.tokenizerJson());
        ScoringEngine engine = new ScoringEngine(model, tok)) {
      List<DocumentScore> scores = engine.score(Arrays.asList(TEXTS), engine.scorer(OPTIONS));
      expected = new HashMap<>();
      for (int i = 0; i < TEXTS.length; i++) {
        expected.put(i, scores.get(i));
      }
    }
    assertTrue(expected.get(3).windows() >= 3, "the long text needs several windows");

    String home = System.getenv("SPARK_HOME");
    assertNotNull(home, "surefire sets SPARK_HOME (job/pom.xml)");
    Files.createDirectories(Path.of(home, "jars"));
    Files.writeString(
        Path.of(home, "RELEASE"), "olmo-ppl tests: Spark from the Maven test classpath\n");
    String cp =
        System.getProperty("surefire.test.class.path", System.getProperty("java.class.path"));
    String opens = String.join(" ", StandaloneCluster.moduleOptions()) + " -Dai.djl.offline=true";
    // models cached in this JVM by earlier test classes (local[2]) would hide a driver-side load
    ExecutorModels.closeAll();
    spark =
        SparkSession.builder()
            .master("local-cluster[2,1,1024]")
            .appName("olmo-ppl-apis-test")
            .config("spark.executor.extraClassPath", cp)
            .config("spark.executor.extraJavaOptions", opens)
            .config("spark.driver.host", "127.0.0.1")
            .config("spark.driver.bindAddress", "127.0.0.1")
            .config("spark.ui.enabled", "false")
            .config("spark.sql.shuffle.partitions", "2")
            .getOrCreate();
    spark.sparkContext().setLogLevel("WARN");
    List<Row> rows = new ArrayList<>();
    for (int i = 0; i < TEXTS.length; i++) {
      rows.add(RowFactory.create(i, TEXTS[i]));
    }
    StructType schema =
        new StructType().add("id", DataTypes.IntegerType, false).add("text", DataTypes.StringType);
    docs = spark.createDataFrame(rows, schema).repartition(2);
  }

  @AfterAll
  static void stop() {
    if (spark != null) {
      spark.stop();
    }
    SparkSession.clearDefaultSession();
    SparkSession.clearActiveSession();
  }

  /**
   * @return the pid of the JVM that runs the task
   */
  static final class Pid implements MapFunction<Row, Long> {
    @Override
    public Long call(Row r) {
      return ProcessHandle.current().pid();
    }
  }

  private static void assertRel(double want, double got, String what) {
    assertEquals(want, got, REL * Math.abs(want), what);
  }

  /**
   * Perplexity is exp(mean NLL): a relative error e of the NLL moves it by a relative e * mean NLL
   * (1.6e-6 at a random model's mean NLL of 15.7), so it is compared as its logarithm, the mean
   * NLL, to the NLL's relative bound.
   */
  private static void assertPerplexity(double want, double got, String what) {
    assertRel(Math.log(want), Math.log(got), what + " (as log perplexity, the mean NLL)");
  }

  /**
   * Checks the score columns of {@code r} (read by name) against the in-process reference for row
   * {@code id}.
   */
  private static void assertScore(int id, Row r, boolean withLogprobs, String api) {
    DocumentScore e = expected.get(id);
    String where = api + " row " + id;
    assertEquals(e.status().id(), r.getAs(ScoreColumns.STATUS), where);
    assertEquals(e.tokens(), (int) r.<Integer>getAs(ScoreColumns.TOKENS), where);
    assertEquals(e.windows(), (int) r.<Integer>getAs(ScoreColumns.WINDOWS), where);
    assertRel(e.nll(), r.getAs(ScoreColumns.NLL), where + " nll");
    if (e.perplexity() == null) {
      assertNull(r.getAs(ScoreColumns.PERPLEXITY), where);
      assertNull(r.getAs(ScoreColumns.BITS_PER_BYTE), where);
    } else {
      assertPerplexity(e.perplexity(), r.getAs(ScoreColumns.PERPLEXITY), where + " perplexity");
      assertRel(e.bitsPerByte(), r.getAs(ScoreColumns.BITS_PER_BYTE), where + " bits_per_byte");
    }
    String stamp =
        r.getAs(
            ScoreColumns.MODEL); // fingerprint, then a hash of the settings that change the numbers
    assertTrue(
        stamp.startsWith(fingerprint + "-") && stamp.length() == fingerprint.length() + 9,
        where + " " + stamp);
    if (withLogprobs) {
      List<Double> lps = r.getList(r.fieldIndex(ScoreColumns.TOKEN_LOGPROBS));
      if (e.status() == Status.NULL_TEXT) {
        assertNull(lps, where + ": no log-probs for a null text");
      } else {
        assertEquals(e.tokens(), lps.size(), where);
        for (int k = 0; k < lps.size(); k++) {
          // float32 log-probs: the executors' thread count may change the last bits
          double w = e.tokenLogprobs()[k];
          assertEquals(w, lps.get(k), REL * Math.max(1, Math.abs(w)), where + " token " + k);
        }
      }
    }
  }

  private static void assertAllRows(List<Row> rows, String api) {
    assertEquals(TEXTS.length, rows.size(), api + ": one output row per input row");
    boolean[] seen = new boolean[TEXTS.length];
    for (Row r : rows) {
      int id = r.getAs("id");
      assertFalse(seen[id], api + ": row " + id + " twice");
      seen[id] = true;
      if (Arrays.asList(r.schema().fieldNames()).contains("text")) {
        assertEquals(TEXTS[id], r.getAs("text"), api + ": input column kept");
      }
      assertScore(id, r, true, api);
    }
  }

  private static void assertNoModelInDriver(String api) {
    assertEquals(
        0, ExecutorModels.size(), api + ": the driver must not load a model; executors score");
  }

  @Test
  void dataFrameApiScoresInExecutorsLikeInProcess() {
    Dataset<Row> scored = OlmoPerplexity.score(docs, modelPath, "text", OPTIONS);
    assertEquals(ScoreColumns.outputSchema(docs.schema(), true), scored.schema());
    List<Row> rows = scored.collectAsList();
    assertAllRows(rows, "DataFrame");
    List<String> statuses =
        rows.stream().map(r -> r.<String>getAs(ScoreColumns.STATUS)).sorted().toList();
    assertEquals(List.of("empty", "null_text", "ok", "ok", "ok", "ok"), statuses);

    long driver = ProcessHandle.current().pid();
    List<Long> pids = scored.map(new Pid(), Encoders.LONG()).distinct().collectAsList();
    assertFalse(pids.isEmpty());
    assertFalse(
        pids.contains(driver),
        "rows scored in executor JVMs " + pids + ", not the driver " + driver);
    assertNoModelInDriver("DataFrame");
  }

  @Test
  void mlTransformerGivesTheDataFrameColumnsAndValues() throws Exception {
    OlmoPerplexityTransformer t =
        new OlmoPerplexityTransformer()
            .setModelPath(modelPath)
            .setInputCol("text")
            .setWindow(64)
            .setStride(32)
            .setBos("eos")
            .setTokenLogprobs(true)
            .setBatchTokens(512);
    assertEquals(
        OPTIONS, t.scoringOptions(), "params map to the options used for the DataFrame API");
    Dataset<Row> out = t.transform(docs);
    assertEquals(OlmoPerplexity.score(docs, modelPath, "text", OPTIONS).schema(), out.schema());
    assertEquals(t.transformSchema(docs.schema()), out.schema());
    assertAllRows(out.collectAsList(), "ML transformer");

    // a ParamMap at transform time overrides (here: no log-probs column) without touching t
    Dataset<Row> noLps = t.transform(docs, new ParamMap().put(t.tokenLogprobs(), false));
    assertEquals(ScoreColumns.outputSchema(docs.schema(), false), noLps.schema());
    assertTrue(t.getTokenLogprobs());
    OlmoPerplexityTransformer c = t.copy(new ParamMap().put(t.window(), 128));
    assertEquals(128, c.getWindow());
    assertEquals(64, t.getWindow());
    assertEquals(t.uid(), c.uid());
    assertNoModelInDriver("ML transformer");
  }

  @Test
  void mlTransformerDefaultsAndSaveLoad(@TempDir Path tmp) throws Exception {
    OlmoPerplexityTransformer d = new OlmoPerplexityTransformer();
    assertEquals("text", d.getInputCol());
    assertNull(d.getModelPath());
    assertNull(d.getWindow());
    assertNull(d.getStride());
    assertEquals(ScoringOptions.defaults(), d.scoringOptions(), "defaults are the CLI's");

    OlmoPerplexityTransformer t =
        new OlmoPerplexityTransformer()
            .setModelPath(modelPath)
            .setWindow(64)
            .setStride(32)
            .setBos("none")
            .setTying("config")
            .setDevice("cpu")
            .setTokenLogprobs(true);
    String path = tmp.resolve("stage").toString();
    t.write().overwrite().save(path);
    OlmoPerplexityTransformer back = OlmoPerplexityTransformer.load(path);
    assertEquals(t.uid(), back.uid());
    assertEquals(t.scoringOptions(), back.scoringOptions());
    assertEquals(modelPath, back.getModelPath());
  }

  @Test
  void mlTransformerRefusesInvalidParamsNamingThem() {
    OlmoPerplexityTransformer t = new OlmoPerplexityTransformer();
    Map<String, Runnable> bad = new java.util.LinkedHashMap<>();
    bad.put("window", () -> t.setWindow(0));
    bad.put("stride", () -> t.setStride(-1));
    bad.put("bos", () -> t.setBos("x"));
    bad.put("tying", () -> t.setTying("loose"));
    bad.put("precision", () -> t.setPrecision("bf16"));
    bad.put("batchTokens", () -> t.setBatchTokens(0));
    bad.put("device", () -> t.setDevice("tpu"));
    bad.put("inputCol", () -> t.setInputCol(""));
    bad.put("modelPath", () -> t.setModelPath(" "));
    bad.forEach(
        (param, set) -> {
          String m = assertThrows(IllegalArgumentException.class, set::run, param).getMessage();
          assertTrue(m.contains("parameter " + param + " given invalid value"), m);
        });
    String m = assertThrows(IllegalArgumentException.class, () -> t.setBos("x")).getMessage();
    assertTrue(m.contains("auto, eos or none"), "allowed values listed: " + m);
    m = assertThrows(IllegalArgumentException.class, () -> t.setWindow(0)).getMessage();
    assertTrue(m.contains("invalid value 0") && m.contains(">= 1"), m);
    // through a ParamMap, too
    m =
        assertThrows(IllegalArgumentException.class, () -> new ParamMap().put(t.window(), 0))
            .getMessage();
    assertTrue(m.contains("parameter window given invalid value 0"), m);
    assertNull(t.getWindow(), "a refused value is not set");

    // checked before any job: missing modelPath, column, type, stride vs window, window vs the
    // model
    Supplier<OlmoPerplexityTransformer> ok =
        () -> new OlmoPerplexityTransformer().setModelPath(modelPath);
    m =
        assertThrows(
                IllegalArgumentException.class,
                () -> new OlmoPerplexityTransformer().transform(docs))
            .getMessage();
    assertTrue(m.contains("modelPath is required"), m);
    m =
        assertThrows(
                IllegalArgumentException.class, () -> ok.get().setInputCol("body").transform(docs))
            .getMessage();
    assertTrue(m.contains("'body'") && m.contains("inputCol") && m.contains("id, text"), m);
    m =
        assertThrows(
                IllegalArgumentException.class, () -> ok.get().setInputCol("id").transform(docs))
            .getMessage();
    assertTrue(m.contains("'id'") && m.contains("inputCol") && m.contains("not string"), m);
    m =
        assertThrows(
                IllegalArgumentException.class,
                () -> ok.get().setWindow(8).setStride(16).transform(docs))
            .getMessage();
    assertTrue(m.contains("stride 16") && m.contains("window 8"), m);
    m =
        assertThrows(IllegalArgumentException.class, () -> ok.get().setWindow(1000).transform(docs))
            .getMessage();
    assertTrue(m.contains("window 1000") && m.contains("256 positions"), m);
  }

  @Test
  void sqlFunctionReturnsTheJobColumnsAsAStruct() {
    OlmoPerplexity.register(spark, "olmo_perplexity", modelPath, OPTIONS);
    docs.createOrReplaceTempView("t");
    List<Row> two =
        spark
            .sql(
                "SELECT id, olmo_perplexity(text).perplexity AS perplexity,"
                    + " olmo_perplexity(text).ppl_status AS ppl_status FROM t")
            .collectAsList();
    assertEquals(TEXTS.length, two.size());
    for (Row r : two) {
      DocumentScore e = expected.get(r.<Integer>getAs("id"));
      assertEquals(e.status().id(), r.getAs("ppl_status"));
      if (e.perplexity() == null) {
        assertNull(r.getAs("perplexity"));
      } else {
        assertPerplexity(e.perplexity(), r.getAs("perplexity"), "SQL perplexity");
      }
    }

    Dataset<Row> all =
        spark.sql("SELECT id, s.* FROM (SELECT id, olmo_perplexity(text) AS s FROM t)");
    StructType want = new StructType().add("id", DataTypes.IntegerType, false);
    for (var f : ScoreColumns.fields(true)) {
      want = want.add(f);
    }
    assertEquals(want, all.schema(), "the struct holds exactly the job's appended columns");
    assertAllRows(all.collectAsList(), "SQL");
    assertNoModelInDriver("SQL");

    // validated on the driver at registration
    String m =
        assertThrows(
                IllegalArgumentException.class,
                () ->
                    OlmoPerplexity.register(
                        spark, "bad", modelPath, OPTIONS.withWindow(1000, null)))
            .getMessage();
    assertTrue(m.contains("window 1000"), m);
  }
}
