package io.olmoppl.batching;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import ai.djl.Device;
import ai.djl.engine.EngineException;
import com.sun.jna.NativeLibrary;
import io.olmoppl.checkpoint.Checkpoint;
import io.olmoppl.checkpoint.CheckpointLayout;
import io.olmoppl.checkpoint.TyingRule;
import io.olmoppl.checkpoint.writer.CheckpointMaker;
import io.olmoppl.model.OlmoModel;
import io.olmoppl.model.Precision;
import io.olmoppl.runtime.DjlSettings;
import io.olmoppl.scoring.Bos;
import io.olmoppl.scoring.DocumentScore;
import io.olmoppl.scoring.PerplexityScorer;
import io.olmoppl.scoring.ScoringOptions;
import io.olmoppl.scoring.Status;
import io.olmoppl.testing.Refcases;
import io.olmoppl.tokenizer.OlmoTokenizer;
import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import org.apache.arrow.memory.BufferAllocator;
import org.apache.arrow.memory.RootAllocator;
import org.apache.arrow.vector.VarCharVector;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Real out-of-memory in the scoring engine (README "Failure behaviour"): a native allocation
 * failure inside a batch splits the batch and retries down to one window; only a window that cannot
 * run alone fails, as its row's status {@code out_of_memory}, never the request.
 *
 * <p>Nothing is mocked. A child JVM ({@link LimitedScoring}) loads a real checkpoint written by
 * {@link CheckpointMaker} (hidden 512, one block, 16,384 positions) with the real tokenizer and
 * engine, scores six short documents, then lowers its own address-space limit ({@code
 * setrlimit(RLIMIT_AS)}) to its current size plus {@link #HEADROOM_MIB}, so that libtorch's CPU
 * allocator really fails. Measured margins: the short documents all ran with 48 MiB of headroom
 * (some failed with 16); the 14,001-token window's activations need between 256 and 512 MiB. Linux
 * only (RLIMIT_AS, /proc).
 */
class OutOfMemoryTest {
  /** Address space the child may add after the limit: between the short and the long needs. */
  static final long HEADROOM_MIB = 128;

  /** The README's bound for a document scored in batches of other shapes (BatchShapeBoundTest). */
  static final double REL_NLL = io.olmoppl.testing.Refcases.BATCH_REL_NLL;

  static final int SHORT_DOCS = 6;

  /** Row of the long document in the mixed request: between short ones, not first or last. */
  static final int LONG_ROW = 3;

  /** Words of the long document: 14,001 tokens, one window of the model's 16,384 positions. */
  static final int LONG_WORDS = 14_000;

  @TempDir static Path tmp;

  private static ChildRun run;

  @Test
  void aBatchSplitsInHalvesUntilOnlyTheWindowThatDoesNotFitFails() throws Exception {
    ChildRun r = childRun();
    r.assertCompleted();
    List<Row> ref = r.rows("REFERENCE");
    List<Row> mixed = r.rows("MIXED");
    assertEquals(SHORT_DOCS, ref.size());
    assertEquals(SHORT_DOCS + 1, mixed.size(), r.log());
    Row big = mixed.get(LONG_ROW);
    assertEquals(Status.OUT_OF_MEMORY.id(), big.status(), r.log());
    assertEquals(0, big.tokens());
    assertEquals(0.0, big.nll());
    assertEquals(1, big.windows(), "the long document is one window");
    for (int i = 0; i < SHORT_DOCS; i++) {
      Row want = ref.get(i);
      Row got = mixed.get(i < LONG_ROW ? i : i + 1);
      assertEquals(Status.OK.id(), got.status(), "short document " + i + "\n" + r.log());
      assertEquals(want.tokens(), got.tokens(), "short document " + i);
      assertEquals(
          want.nll(), got.nll(), REL_NLL * want.nll(), "short document " + i + " vs unlimited");
    }
    // all seven windows were one batch, split until the long window ran alone
    assertTrue(r.stderr().contains("a batch of 7 windows failed"), r.log());
    assertTrue(r.stderr().contains("retrying it in halves"), r.log());
    // the failure is libtorch's own CPU allocator running out, not the Java heap
    assertTrue(r.stderr().contains("DefaultCPUAllocator"), r.log());
    assertFalse(r.stderr().contains("java.lang.OutOfMemoryError"), r.log());
    // only the long window ever failed alone: once in this request, once in the next
    List<String> alone =
        r.stderr().lines().filter(l -> l.contains("does not fit in memory even alone")).toList();
    assertEquals(2, alone.size(), r.log());
    for (String l : alone) {
      assertTrue(l.contains("a window of " + r.longInput() + " tokens"), l);
    }
  }

  @Test
  void aRequestWhoseOnlyWindowDoesNotFitCompletesAndTheEngineGoesOn() throws Exception {
    ChildRun r = childRun();
    r.assertCompleted();
    List<Row> alone = r.rows("ALONE");
    assertEquals(1, alone.size(), r.log());
    assertEquals(Status.OUT_OF_MEMORY.id(), alone.get(0).status(), r.log());
    assertEquals(0, alone.get(0).tokens());
    // the same engine, still under the limit, scores the short documents as before the limit
    List<Row> ref = r.rows("REFERENCE");
    List<Row> after = r.rows("AFTER");
    assertEquals(SHORT_DOCS, after.size(), r.log());
    for (int i = 0; i < SHORT_DOCS; i++) {
      assertEquals(Status.OK.id(), after.get(i).status(), "short document " + i);
      assertEquals(ref.get(i).tokens(), after.get(i).tokens());
      assertEquals(ref.get(i).nll(), after.get(i).nll(), REL_NLL * ref.get(i).nll());
    }
  }

  /**
   * The allocation-failure texts the engine must recognise, as the engines phrase them: the CPU one
   * as {@link #aBatchSplitsInHalvesUntilOnlyTheWindowThatDoesNotFitFails} got it from libtorch
   * 2.5.1, the CUDA one as PyTorch 2.5's CUDA caching allocator words it (not run: no GPU here).
   */
  @Test
  void allocationFailureMessagesAreRecognised() {
    assertTrue(
        OutOfMemory.causedBy(
            new EngineException(
                "[enforce fail at alloc_cpu.cpp:117] err == 0. DefaultCPUAllocator: can't"
                    + " allocate memory: you tried to allocate 28674048 bytes. Error code 12"
                    + " (Cannot allocate memory)")));
    assertTrue(
        OutOfMemory.causedBy(
            new EngineException(
                "CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of"
                    + " 79.10 GiB of which 1.06 GiB is free.")));
    // DJL's JNI turns a C++ exception into an EngineException of its what(): new's failure
    assertTrue(OutOfMemory.causedBy(new EngineException("std::bad_alloc")));
    assertTrue(OutOfMemory.causedBy(new RuntimeException(new OutOfMemoryError("heap"))));
    assertFalse(OutOfMemory.causedBy(new EngineException("shape mismatch: (2, 3) vs (3, 2)")));
  }

  /** One result row as the child printed it. */
  record Row(String status, int tokens, int windows, double nll) {}

  /** How the child ended, what it printed: result rows per request, and its log. */
  record ChildRun(
      int exitCode, Map<String, List<Row>> requests, int longInput, String stderr, String stdout) {
    List<Row> rows(String request) {
      return requests.getOrDefault(request, List.of());
    }

    /** Fails unless the child finished every request and exited 0 (no JVM crash, no throw). */
    void assertCompleted() {
      assertEquals(0, exitCode, "the child JVM's exit code\n" + log());
      assertTrue(stdout.contains("DONE"), log());
    }

    String log() {
      String s = "child stdout:\n" + stdout + "\nchild stderr:\n" + stderr;
      return s.length() > 12_000 ? s.substring(s.length() - 12_000) : s;
    }
  }

  /**
   * Writes the checkpoint and runs the child once for all tests of this class (a child that failed
   * is not run again).
   */
  private static synchronized ChildRun childRun() throws Exception {
    assumeTrue(
        System.getProperty("os.name", "").toLowerCase(Locale.ROOT).contains("linux"),
        "RLIMIT_AS and /proc/self/status are Linux's");
    if (run != null) {
      return run;
    }
    Path ckpt = tmp.resolve("wide");
    CheckpointMaker.small(CheckpointLayout.HF_OLMO)
        .withDims(
            /* hidden= */ 512,
            /* layers= */ 1,
            /* heads= */ 8,
            /* kvHeads= */ 8,
            /* intermediate= */ 1024,
            /* maxPositions= */ 16_384)
        .withVocabRows(CheckpointMaker.NEOX_ROWS)
        .write(ckpt, Refcases.neoxTokenizer());
    List<String> cmd = new ArrayList<>();
    cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    // this JVM's module options and system properties (conf/java-options and the surefire argLine)
    for (String a : ManagementFactory.getRuntimeMXBean().getInputArguments()) {
      if (a.startsWith("--add-")
          || a.startsWith("-D")
          || a.equals("-XX:+IgnoreUnrecognizedVMOptions")) {
        cmd.add(a);
      }
    }
    // a small heap, reserved at start like all of the JVM's own spaces; the serial collector
    // needs the least native memory of its own
    cmd.addAll(
        List.of(
            "-Xmx256m",
            "-XX:+UseSerialGC",
            "-XX:ErrorFile=" + tmp.resolve("hs_err_%p.log"),
            "-cp",
            System.getProperty("surefire.test.class.path", System.getProperty("java.class.path")),
            LimitedScoring.class.getName(),
            ckpt.toString(),
            String.valueOf(HEADROOM_MIB)));
    Path out = tmp.resolve("child.out");
    Path err = tmp.resolve("child.err");
    Process p =
        new ProcessBuilder(cmd).redirectOutput(out.toFile()).redirectError(err.toFile()).start();
    int exit;
    if (p.waitFor(180, TimeUnit.SECONDS)) {
      exit = p.exitValue();
    } else {
      p.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
      exit = -1;
    }
    String stdout = Files.readString(out);
    String stderr = Files.readString(err);
    try (var crash = Files.list(tmp)) {
      for (Path h : crash.filter(f -> f.getFileName().toString().startsWith("hs_err")).toList()) {
        String crashLog = Files.readString(h); // its head names the signal and the frame
        stderr += "\n" + h + ":\n" + crashLog.substring(0, Math.min(4_000, crashLog.length()));
      }
    }
    run = parse(exit, stdout, stderr);
    return run;
  }

  private static ChildRun parse(int exit, String stdout, String stderr) {
    Map<String, List<Row>> requests = new HashMap<>();
    int longInput = -1;
    for (String line : stdout.lines().toList()) {
      String[] f = line.split(" ");
      if (f[0].equals("ROW")) {
        requests
            .computeIfAbsent(f[1], k -> new ArrayList<>())
            .add(
                new Row(
                    f[2],
                    Integer.parseInt(f[3]),
                    Integer.parseInt(f[4]),
                    Double.parseDouble(f[5])));
      } else if (f[0].equals("LONG_INPUT")) {
        longInput = Integer.parseInt(f[1]);
      }
    }
    return new ChildRun(exit, requests, longInput, stderr, stdout);
  }

  /**
   * The child JVM: args are the checkpoint directory and the headroom in MiB. Prints {@code ROW
   * request status tokens windows nll} per result row of the requests REFERENCE (short documents,
   * no limit), then under the limit MIXED (the short documents with the long one at {@link
   * #LONG_ROW}), ALONE (the long one) and AFTER (the short ones again); then {@code DONE}.
   */
  static final class LimitedScoring {
    /** {@code RLIMIT_AS} of {@code <sys/resource.h>} on Linux. */
    private static final int RLIMIT_AS = 9;

    private LimitedScoring() {}

    public static void main(String[] args) throws Exception {
      Path dir = Path.of(args[0]);
      long headroom = Long.parseLong(args[1]) << 20;
      DjlSettings.configure();
      Checkpoint ckpt = Checkpoint.open(dir, TyingRule.STRICT);
      try (OlmoModel model = OlmoModel.load(ckpt, ckpt, Device.cpu(), Precision.FP32);
          OlmoTokenizer tokenizer = OlmoTokenizer.load(ckpt.tokenizerJson());
          ScoringEngine engine =
              new ScoringEngine(model, tokenizer, ScoringEngine.QUEUE_TOKENS_DEFAULT, 0);
          BufferAllocator alloc = new RootAllocator()) {
        // a budget that packs all the windows of a request into one batch
        PerplexityScorer scorer =
            engine.scorer(ScoringOptions.defaults().withBos(Bos.EOS).withBatchTokens(1 << 20));
        List<String> shorts = new ArrayList<>();
        for (int i = 0; i < SHORT_DOCS; i++) {
          shorts.add(words(100 + i, 60 + 30 * i));
        }
        String longText = words(7, LONG_WORDS);
        System.out.println(
            "LONG_INPUT " + scorer.plan(tokenizer.encode(longText)).get(0).inputLength());
        score(engine, scorer, alloc, "REFERENCE", shorts);

        long size = procStatus("VmSize");
        limitAddressSpace(size + headroom);
        System.out.println("LIMIT " + size + " + " + headroom);
        List<String> mixed = new ArrayList<>(shorts);
        mixed.add(LONG_ROW, longText);
        score(engine, scorer, alloc, "MIXED", mixed);
        score(engine, scorer, alloc, "ALONE", List.of(longText));
        score(engine, scorer, alloc, "AFTER", shorts);
      }
      System.out.println("DONE");
    }

    private static void score(
        ScoringEngine engine,
        PerplexityScorer scorer,
        BufferAllocator alloc,
        String request,
        List<String> texts)
        throws InterruptedException {
      try (VarCharVector v = new VarCharVector("text", alloc)) {
        v.allocateNew(texts.size());
        for (int i = 0; i < texts.size(); i++) {
          v.setSafe(i, texts.get(i).getBytes(StandardCharsets.UTF_8));
        }
        v.setValueCount(texts.size());
        for (DocumentScore s : engine.score(v, scorer)) {
          System.out.println(
              "ROW "
                  + request
                  + " "
                  + s.status().id()
                  + " "
                  + s.tokens()
                  + " "
                  + s.windows()
                  + " "
                  + s.nll());
        }
      }
    }

    /** Seeded text of {@code n} common words, about one token each. */
    static String words(long seed, int n) {
      String[] w = {
        "the", "of", "and", "to", "in", "a", "is", "that", "for", "it", "as", "was", "with", "be",
        "by", "on", "not", "he", "this", "are", "or", "his", "from", "at", "which", "but", "have",
        "an", "had", "they", "you", "were", "their", "one", "all", "we", "can", "her", "has",
        "there", "been", "if", "more", "when", "will", "would", "who", "so", "no", "river", "stone",
        "light"
      };
      SplittableRandom rnd = new SplittableRandom(seed);
      StringBuilder b = new StringBuilder();
      for (int i = 0; i < n; i++) {
        b.append(i == 0 ? "" : " ").append(w[rnd.nextInt(w.length)]);
      }
      return b.append('.').toString();
    }

    /**
     * @return a size field of /proc/self/status (given in kB there) in bytes
     */
    static long procStatus(String key) throws IOException {
      for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
        if (line.startsWith(key + ":")) {
          return Long.parseLong(line.replaceAll("[^0-9]", "")) << 10;
        }
      }
      throw new IllegalStateException("no " + key + " in /proc/self/status");
    }

    /** Lowers the soft limit of this process's address space (the hard limit stays). */
    static void limitAddressSpace(long bytes) {
      NativeLibrary c = NativeLibrary.getInstance("c");
      long[] limit = new long[2]; // struct rlimit { rlim_cur; rlim_max; }
      if (c.getFunction("getrlimit").invokeInt(new Object[] {RLIMIT_AS, limit}) != 0) {
        throw new IllegalStateException("getrlimit(RLIMIT_AS) failed");
      }
      limit[0] = bytes;
      if (c.getFunction("setrlimit").invokeInt(new Object[] {RLIMIT_AS, limit}) != 0) {
        throw new IllegalStateException("setrlimit(RLIMIT_AS, " + bytes + ") failed");
      }
    }
  }
}
