// Results finished out of order come out in sequence order, skipped numbers
// do not stall it, and a full buffer still takes the result due next.
#include "gpulab/infer/reorder_buffer.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

namespace gpulab::infer {
namespace {

std::vector<int64_t> rb_drain(ReorderBuffer<std::string>& buffer) {
  std::vector<int64_t> order;
  while (auto next = buffer.next()) order.push_back(next->first);
  return order;
}

TEST(ReorderBufferTest, OutOfOrderResultsComeOutInSequenceOrder) {
  ReorderBuffer<std::string> buffer(0, /*ordered=*/true);
  for (int64_t i : {3, 1, 0, 4, 2}) buffer.put(i, std::to_string(i));
  buffer.finish();
  EXPECT_EQ(rb_drain(buffer), (std::vector<int64_t>{0, 1, 2, 3, 4}));
}

TEST(ReorderBufferTest, SkippedNumbersDoNotStallTheOrder) {
  ReorderBuffer<std::string> buffer(0, true);
  buffer.put(2, "2");
  buffer.skip(1);
  buffer.put(4, "4");
  buffer.skip(0);
  buffer.skip(3);
  auto first = buffer.next();
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->first, 2);
  auto second = buffer.next();
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(second->first, 4);
}

TEST(ReorderBufferTest, UnorderedResultsComeOutAsTheyArrive) {
  ReorderBuffer<std::string> buffer(0, /*ordered=*/false);
  buffer.put(5, "5");
  auto next = buffer.next();
  ASSERT_TRUE(next.has_value());
  EXPECT_EQ(next->first, 5);  // 0-4 are not waited for
}

TEST(ReorderBufferTest, AFullBufferStillTakesTheResultDueNext) {
  ReorderBuffer<std::string> buffer(2, true);
  buffer.put(1, "1");
  buffer.put(2, "2");
  bool third_put = false;
  std::thread later([&] {
    buffer.put(3, "3");  // waits: full, and 3 is not due
    third_put = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  EXPECT_FALSE(third_put);
  EXPECT_EQ(buffer.size(), 2u);
  buffer.put(0, "0");  // due next: taken although full
  std::vector<int64_t> order;
  for (int i = 0; i < 4; ++i) order.push_back(buffer.next()->first);
  later.join();
  EXPECT_TRUE(third_put);
  EXPECT_EQ(order, (std::vector<int64_t>{0, 1, 2, 3}));
}

TEST(ReorderBufferTest, FinishHandsOutWhatIsLeftThenEnds) {
  ReorderBuffer<std::string> buffer(0, true);
  buffer.put(2, "2");
  std::thread finisher([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    buffer.finish();  // 0 and 1 will never come
  });
  EXPECT_EQ(rb_drain(buffer), (std::vector<int64_t>{2}));
  finisher.join();
}

TEST(ReorderBufferTest, AbortWakesAWaitingWriter) {
  ReorderBuffer<std::string> buffer(0, true);
  std::thread aborter([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    buffer.abort();
  });
  EXPECT_FALSE(buffer.next().has_value());
  aborter.join();
  EXPECT_FALSE(buffer.put(0, "0"));
}

}  // namespace
}  // namespace gpulab::infer
