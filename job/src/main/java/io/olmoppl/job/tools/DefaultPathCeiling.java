package io.olmoppl.job.tools;

import io.olmoppl.runtime.MklDispatch;
import io.olmoppl.runtime.NativeAllocator;
import io.olmoppl.runtime.TorchEngine;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * MKL's 2048^3 fp32 rate on the code path MKL picks by itself, measured in a JVM of its own: where
 * {@link MklDispatch} gave this process MKL's Intel kernels, only another process can still run
 * MKL's own choice (the choice is made once, before libtorch loads). This is the rate a plain
 * libtorch or MKL program gets on the machine, the one to compare other engines' figures with. The
 * child tunes glibc's malloc as the job does ({@link NativeAllocator#tune}), so the two rates
 * differ by MKL's code path only: untuned, each 2048^3 product's fresh 16 MiB output is mapped and
 * faulted in again, which cost the child 133-156 against 160-167 GFLOP/s (alternating, a 2-vCPU AMD
 * EPYC Zen 4 at MKL's AVX2 cap) and more inside the bench.
 *
 * <p>The bench runs it right after each of its own 2048^3 measurements, so the two alternate.
 */
final class DefaultPathCeiling {
  /** Printed before the rate on the child's standard output. */
  static final String PREFIX = "gflops_2048=";

  /** Printed before the child's MKL code path, in {@link MklDispatch#select()}'s words. */
  static final String PATH_PREFIX = "mkl_code_path=";

  /** Second-long 2048^3 runs in the child, of which the best is its rate. */
  private static final int RUNS = 3;

  /** The system properties a child takes from this JVM: where DJL finds libtorch, and how. */
  private static final List<String> PASSED_ON = List.of("ai.djl.", "DJL_", "RUST_FLAVOR");

  private DefaultPathCeiling() {}

  /**
   * Runs {@link #main} in a new JVM with MKL left to its own choice.
   *
   * @param threads the engine's thread count (the child's matmul uses as many)
   * @return its 2048^3 rate in GFLOP/s
   * @throws IOException when the child cannot start or does not report a rate; its output is in the
   *     message
   */
  static double measure(int threads) throws IOException {
    List<String> cmd = new ArrayList<>();
    cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    cmd.add("-Xmx256m");
    for (Map.Entry<Object, Object> p : System.getProperties().entrySet()) {
      String key = p.getKey().toString();
      if (PASSED_ON.stream().anyMatch(key::startsWith)) {
        cmd.add("-D" + key + "=" + p.getValue());
      }
    }
    cmd.add("-Dolmoppl.mkl.avx512=false");
    cmd.add("-Dolmoppl.mkl.avx2=false");
    cmd.add("-cp");
    cmd.add(System.getProperty("java.class.path"));
    cmd.add(DefaultPathCeiling.class.getName());
    cmd.add(Integer.toString(threads));
    Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
    p.getOutputStream().close();
    String out;
    try (InputStream o = p.getInputStream()) {
      out = new String(o.readAllBytes(), StandardCharsets.UTF_8); // until the child ends
      p.waitFor();
    } catch (InterruptedException e) {
      p.destroyForcibly();
      Thread.currentThread().interrupt();
      throw new IOException("interrupted while measuring MKL's default path", e);
    }
    String rate = null;
    String path = null;
    for (String line : out.split("\n")) {
      if (line.startsWith(PREFIX)) {
        rate = line.substring(PREFIX.length()).trim();
      } else if (line.startsWith(PATH_PREFIX)) {
        path = line.substring(PATH_PREFIX.length()).trim();
      }
    }
    if (rate != null && path != null) {
      if (!path.startsWith(MklDispatch.OWN_CHOICE)) {
        throw new IOException("the child JVM ran MKL's " + path + ", not MKL's own choice");
      }
      return Double.parseDouble(rate);
    }
    throw new IOException(
        "MKL's default-path measurement (a child JVM) exited with "
            + p.exitValue()
            + " and no rate: "
            + out.strip());
  }

  /**
   * The child: args[0] threads; prints {@link #PREFIX} and the rate, then the MKL path in words.
   */
  public static void main(String[] args) {
    String path = MklDispatch.select(); // before libtorch loads; the properties make it MKL's own
    NativeAllocator.tune(); // the job's allocator settings: only MKL's code path differs
    TorchEngine.get(); // loads libtorch
    ai.djl.pytorch.jni.JniUtils.setNumThreads(Integer.parseInt(args[0]));
    // the best of a few second-long runs: in the first the fresh JVM is still compiling (its JIT
    // threads take CPU from MKL's), which read 127 against 151-176 GFLOP/s after it in the bench
    double best = 0;
    for (int i = 0; i < RUNS; i++) {
      best = Math.max(best, InProcessPhase.matmulGflops(2048, 2048, 2048));
    }
    System.out.println(PREFIX + best);
    System.out.println(PATH_PREFIX + path);
  }
}
