package io.olmoppl.runtime;

import com.sun.jna.Function;
import com.sun.jna.NativeLibrary;
import com.sun.jna.Structure;
import java.util.Map;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Keeps the forward pass's freed activations in the process heap for reuse, on glibc (the C library
 * of most Linux distributions), where libtorch's CPU tensors come from {@code malloc}.
 *
 * <p>By default glibc returns freed memory at the top of a heap to the kernel once more than twice
 * the (dynamic) mmap threshold is free, and serves blocks above that threshold with a fresh {@code
 * mmap}: the next batch then faults every page in again and the kernel zeroes each one, which cost
 * a third of all CPU time in a profile of the scorer. Fixing the threshold at its maximum (32 MiB,
 * half of glibc's 64 MiB per-thread heap) and raising the trim threshold keeps the freed blocks
 * mapped; the forward pass keeps every temporary below the threshold (see {@code
 * io.olmoppl.model.MemoryBudget}). After each batch the model hands the kept free pages back
 * ({@link #trim}), so what stays resident is bounded by one batch's working set. Set the system
 * property {@code olmoppl.malloc.tune} to {@code false} to leave the allocator alone; a preloaded
 * allocator (jemalloc, tcmalloc) has no {@code mallopt} to call and is left alone too.
 */
public final class NativeAllocator {
  private static final Logger LOG = LoggerFactory.getLogger(NativeAllocator.class);
  // <malloc.h>
  private static final int M_TRIM_THRESHOLD = -1;
  private static final int M_TOP_PAD = -2;
  private static final int M_MMAP_THRESHOLD = -3;

  /** The largest mmap threshold glibc accepts on 64-bit systems. */
  static final int MMAP_THRESHOLD = 32 << 20;

  private static final int TRIM_THRESHOLD = 1 << 30;
  private static final int TOP_PAD = 16 << 20;
  private static volatile Boolean tuned;

  /** MKL's switch off its own buffer cache, which {@link #tune} sets unless the user did. */
  static final String MKL_FAST_MM = "MKL_DISABLE_FAST_MM";

  private static volatile boolean setFastMm;

  private NativeAllocator() {}

  /** Idempotent. @return whether glibc's malloc was tuned */
  public static synchronized boolean tune() {
    if (tuned == null) {
      tuned = apply();
    }
    return tuned;
  }

  private static boolean apply() {
    if (!Boolean.parseBoolean(System.getProperty("olmoppl.malloc.tune", "true"))
        || !System.getProperty("os.name", "")
            .toLowerCase(java.util.Locale.ROOT)
            .contains("linux")) {
      return false;
    }
    try {
      NativeLibrary c = NativeLibrary.getInstance("c");
      c.getFunction("gnu_get_libc_version"); // glibc only; throws elsewhere (musl)
      // MKL (inside libtorch) keeps its own cache of sgemm packing buffers outside malloc, on top
      // of
      // what malloc keeps; without it MKL allocates through malloc, whose freed blocks are reused.
      // Read by MKL when it first allocates (the first forward pass); a value the user set stays.
      setFastMm = c.getFunction("getenv").invokePointer(new Object[] {MKL_FAST_MM}) == null;
      c.getFunction("setenv").invokeInt(new Object[] {MKL_FAST_MM, "1", 0});
      Function mallopt = c.getFunction("mallopt");
      if (System.getenv("LD_PRELOAD") != null && !System.getenv("LD_PRELOAD").isBlank()) {
        LOG.info(
            "olmo-ppl: LD_PRELOAD={} is set; glibc malloc left as it is",
            System.getenv("LD_PRELOAD"));
        return false;
      }
      boolean ok =
          mallopt.invokeInt(new Object[] {M_MMAP_THRESHOLD, MMAP_THRESHOLD}) == 1
              & mallopt.invokeInt(new Object[] {M_TRIM_THRESHOLD, TRIM_THRESHOLD}) == 1
              & mallopt.invokeInt(new Object[] {M_TOP_PAD, TOP_PAD}) == 1;
      LOG.info(
          "olmo-ppl: glibc malloc tuned for reuse (mmap threshold {} MiB, trim threshold {} MiB): {}",
          MMAP_THRESHOLD >> 20,
          TRIM_THRESHOLD >> 20,
          ok ? "ok" : "refused");
      return ok;
    } catch (UnsatisfiedLinkError | RuntimeException e) {
      LOG.info("olmo-ppl: not glibc ({}); allocator left as it is", e.getMessage());
      return false;
    }
  }

  /**
   * Returns the free memory glibc's malloc keeps (all arenas, whole free pages) to the system:
   * called between batches, it bounds what one batch's leftovers keep resident, at the cost of
   * faulting in the next batch's working set once (not once per operation, as an untuned allocator
   * does). Nothing happens unless {@link #tune} tuned the allocator.
   */
  public static void trim() {
    if (Boolean.TRUE.equals(tuned)) {
      NativeLibrary.getInstance("c").getFunction("malloc_trim").invokeInt(new Object[] {0L});
    }
  }

  /**
   * Removes from {@code env}, the environment of a child process this JVM starts (from {@link
   * ProcessBuilder#environment()}), what {@link #tune} set for this process's own libtorch: a child
   * measured beside the job (MKL's default path, another engine) then runs as it would on its own.
   * Without glibc's malloc tuned as here, MKL without its buffer cache allocates and faults in its
   * packing buffers on every call (fp32 matmuls 11 to 32 % slower in a plain PyTorch process on a
   * 2-vCPU AMD EPYC Zen 4, MKL at its AVX2 kernels). What the user set stays.
   */
  public static void clearForChild(Map<String, String> env) {
    if (setFastMm) {
      env.remove(MKL_FAST_MM);
    }
  }

  /** glibc's {@code struct mallinfo2} (2.33+): every field a size_t. */
  @Structure.FieldOrder({
    "arena",
    "ordblks",
    "smblks",
    "hblks",
    "hblkhd",
    "usmblks",
    "fsmblks",
    "uordblks",
    "fordblks",
    "keepcost"
  })
  public static class MallInfo2 extends Structure implements Structure.ByValue {
    public long arena;
    public long ordblks;
    public long smblks;
    public long hblks;
    public long hblkhd;
    public long usmblks;
    public long fsmblks;
    public long uordblks;
    public long fordblks;
    public long keepcost;
  }

  /**
   * @return bytes allocated through glibc's malloc now, over all its arenas (heap blocks plus
   *     mmapped ones): where libtorch's tensors, Arrow's buffers and the tokenizer's memory come
   *     from; -1 where there is no glibc 2.33+
   */
  public static long mallocInUseBytes() {
    try {
      MallInfo2 i =
          (MallInfo2)
              NativeLibrary.getInstance("c")
                  .getFunction("mallinfo2")
                  .invoke(MallInfo2.class, new Object[0]);
      return i.uordblks + i.hblkhd;
    } catch (UnsatisfiedLinkError | RuntimeException e) {
      return -1;
    }
  }
}
