package io.olmoppl.spark;

import org.apache.arrow.memory.BufferAllocator;
import org.apache.arrow.memory.RootAllocator;

/**
 * The executor's one Arrow allocator; each batch handed to the engine gets a child that must close
 * to zero.
 */
final class ExecutorArrow {
  private static final BufferAllocator ROOT = new RootAllocator();

  private ExecutorArrow() {}

  static BufferAllocator newBatchAllocator() {
    return ROOT.newChildAllocator("olmo-ppl-batch", 0, Long.MAX_VALUE);
  }

  /**
   * @return bytes currently allocated by all batches of this JVM (tests: zero when no task runs)
   */
  static long allocatedBytes() {
    return ROOT.getAllocatedMemory();
  }
}
