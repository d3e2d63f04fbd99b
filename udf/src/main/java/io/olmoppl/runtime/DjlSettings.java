package io.olmoppl.runtime;

import java.io.File;

/**
 * Process-wide settings DJL reads from system properties. The job sets them itself so that
 * executors need no extra environment: offline mode (no model hub, no native downloads), the CPU
 * flavour of the tokenizers library, and PyTorch as the default engine (the tokenizers jar
 * registers a second engine). It also lets MKL use its AVX-512 kernels on AMD CPUs ({@link
 * MklDispatch}), which must happen before libtorch loads.
 */
public final class DjlSettings {
  private DjlSettings() {}

  /** Idempotent; never overrides a value the user set. */
  public static void configure() {
    setIfAbsent("ai.djl.offline", "true");
    setIfAbsent("RUST_FLAVOR", "cpu");
    setIfAbsent("ai.djl.default_engine", "PyTorch");
    setIfAbsent("ai.djl.pytorch.graph_optimizer", "false");
    if (System.getProperty("DJL_CACHE_DIR") == null && System.getenv("DJL_CACHE_DIR") == null) {
      String home = System.getProperty("user.home");
      if (home == null || home.isEmpty() || "?".equals(home) || !new File(home).canWrite()) {
        System.setProperty("DJL_CACHE_DIR", System.getProperty("java.io.tmpdir") + "/olmo-ppl-djl");
      }
    }
    MklDispatch.select();
  }

  private static void setIfAbsent(String key, String value) {
    if (System.getProperty(key) == null && System.getenv(key) == null) {
      System.setProperty(key, value);
    }
  }
}
