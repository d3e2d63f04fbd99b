package io.olmoppl.job.tools;

import io.olmoppl.runtime.NativeAllocator;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.Supplier;

/** What the bench measures about the machine and the process: description, allocator, memory. */
final class BenchMachine {
  private BenchMachine() {}

  static Map<String, Object> machine() {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("cores", Runtime.getRuntime().availableProcessors());
    m.put("os", System.getProperty("os.name") + " " + System.getProperty("os.arch"));
    try {
      Files.readAllLines(Path.of("/proc/cpuinfo")).stream()
          .filter(l -> l.startsWith("model name"))
          .findFirst()
          .ifPresent(l -> m.put("cpu", l.substring(l.indexOf(':') + 1).trim()));
      Files.readAllLines(Path.of("/proc/meminfo")).stream()
          .filter(l -> l.startsWith("MemTotal"))
          .findFirst()
          .ifPresent(l -> m.put("memory", l.substring(l.indexOf(':') + 1).trim()));
    } catch (IOException e) {
      // not Linux: the figures are still valid without the machine's description
    }
    return m;
  }

  static String allocator() {
    String preload = System.getenv("LD_PRELOAD");
    if (preload != null && !preload.isBlank()) {
      return "LD_PRELOAD=" + preload;
    }
    return Boolean.parseBoolean(System.getProperty("olmoppl.malloc.tune", "true"))
        ? "glibc malloc, tuned by olmo-ppl (fixed 32 MiB mmap threshold, 1 GiB trim threshold)"
        : "glibc malloc, defaults (-Dolmoppl.malloc.tune=false)";
  }

  /**
   * @return a /proc/self/status memory line in bytes ({@code VmRSS:} now, {@code VmHWM:} peak); -1
   *     off Linux
   */
  static long residentBytes(String key) {
    try {
      for (String l : Files.readAllLines(Path.of("/proc/self/status"))) {
        if (l.startsWith(key)) {
          return Long.parseLong(l.replaceAll("[^0-9]", "")) * 1024;
        }
      }
    } catch (IOException e) {
      // not Linux
    }
    return -1;
  }

  /**
   * Samples what glibc's malloc has allocated (see {@link NativeAllocator#mallocInUseBytes}) every
   * 100 ms (each sample walks malloc's free lists: at 10 ms it took 1.7 % of the CPU) and keeps the
   * largest value: the weights, the engine's activations, the tokenizer's and Arrow's memory are
   * there. Sampling pauses while the bench itself allocates (the matmul ceiling's operands).
   */
  static final class MallocSampler implements AutoCloseable {
    private final Thread thread;
    private volatile boolean stop;
    private volatile boolean paused;
    private volatile long max = now();

    MallocSampler() {
      thread = new Thread(this::run, "olmo-ppl-bench-memory");
      thread.setDaemon(true);
      thread.start();
    }

    /**
     * @return bytes allocated through glibc's malloc now; -1 without glibc 2.33+
     */
    static long now() {
      return NativeAllocator.mallocInUseBytes();
    }

    private void run() {
      while (!stop) {
        if (!paused) {
          max = Math.max(max, now());
        }
        try {
          Thread.sleep(100);
        } catch (InterruptedException e) {
          return;
        }
      }
    }

    /** Runs {@code work} unsampled; @return its result */
    <T> T unsampled(Supplier<T> work) {
      max = Math.max(max, now());
      paused = true;
      try {
        return work.get();
      } finally {
        paused = false;
      }
    }

    /**
     * @return the largest sample so far
     */
    long max() {
      return Math.max(max, now());
    }

    @Override
    public void close() {
      stop = true;
      thread.interrupt();
    }
  }

  /**
   * Resets the process's peak resident size to the current one (Linux 4.0+), so the peak is the
   * scoring's own.
   */
  static void resetPeakResident() {
    try {
      Files.writeString(Path.of("/proc/self/clear_refs"), "5");
    } catch (IOException e) {
      // not Linux, or not allowed: the peak then covers the whole process life
    }
  }
}
