// The pool's input queue: bounded under every policy, drops counted by what
// comes back, batches of fitting items.
#include "gpulab/infer/bounded_queue.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

namespace gpulab::infer {
namespace {

TEST(BoundedQueueTest, DropOldestKeepsTheNewestAtTheBound) {
  BoundedQueue<int> queue(3, FullPolicy::kDropOldest);
  std::vector<int> dropped;
  for (int i = 0; i < 10; ++i) {
    auto r = queue.push(i);
    EXPECT_TRUE(r.accepted);
    if (r.dropped) dropped.push_back(*r.dropped);
    EXPECT_LE(queue.size(), 3u);
  }
  EXPECT_EQ(dropped, (std::vector<int>{0, 1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(queue.pop_batch(10, std::chrono::microseconds(0)), (std::vector<int>{7, 8, 9}));
}

TEST(BoundedQueueTest, DropNewestRefusesWhatComesAfterTheBound) {
  BoundedQueue<int> queue(2, FullPolicy::kDropNewest);
  EXPECT_TRUE(queue.push(0).accepted);
  EXPECT_TRUE(queue.push(1).accepted);
  auto r = queue.push(2);
  EXPECT_FALSE(r.accepted);
  ASSERT_TRUE(r.dropped.has_value());
  EXPECT_EQ(*r.dropped, 2);
  EXPECT_EQ(queue.pop_batch(10, std::chrono::microseconds(0)), (std::vector<int>{0, 1}));
}

TEST(BoundedQueueTest, BlockWaitsForASlotAndLosesNothing) {
  BoundedQueue<int> queue(2, FullPolicy::kBlock);
  std::atomic<int> pushed{0};
  std::thread producer([&] {
    for (int i = 0; i < 50; ++i) {
      auto r = queue.push(i);
      EXPECT_TRUE(r.accepted);
      EXPECT_FALSE(r.dropped.has_value());
      ++pushed;
    }
    queue.close();
  });
  std::vector<int> got;
  while (true) {
    auto batch = queue.pop_batch(1, std::chrono::microseconds(0));
    if (batch.empty()) break;
    EXPECT_LE(queue.size(), 2u);
    got.push_back(batch[0]);
  }
  producer.join();
  ASSERT_EQ(got.size(), 50u);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(got[i], i);
}

TEST(BoundedQueueTest, BatchesStopAtTheFirstItemThatDoesNotFit) {
  BoundedQueue<int> queue(8, FullPolicy::kBlock);
  for (int v : {2, 4, 6, 7, 8}) queue.push(v);
  const auto same_parity = [](const int& a, const int& b) { return a % 2 == b % 2; };
  EXPECT_EQ(queue.pop_batch(2, std::chrono::microseconds(0), same_parity),
            (std::vector<int>{2, 4}));
  EXPECT_EQ(queue.pop_batch(8, std::chrono::microseconds(0), same_parity), (std::vector<int>{6}));
  EXPECT_EQ(queue.pop_batch(8, std::chrono::microseconds(0), same_parity), (std::vector<int>{7}));
}

TEST(BoundedQueueTest, ABatchWaitsUpToTheDelayForMoreItems) {
  BoundedQueue<int> queue(8, FullPolicy::kBlock);
  queue.push(1);
  std::thread late([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    queue.push(2);
  });
  // A generous delay: the second item arrives well within it.
  auto batch = queue.pop_batch(2, std::chrono::seconds(30));
  late.join();
  EXPECT_EQ(batch, (std::vector<int>{1, 2}));
}

TEST(BoundedQueueTest, CloseReleasesBlockedProducersAndDrainsConsumers) {
  BoundedQueue<int> queue(1, FullPolicy::kBlock);
  queue.push(0);
  std::optional<int> refused;
  std::thread producer([&] { refused = queue.push(1).dropped; });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  queue.close();
  producer.join();
  ASSERT_TRUE(refused.has_value());
  EXPECT_EQ(*refused, 1);
  EXPECT_EQ(queue.pop_batch(4, std::chrono::microseconds(0)), (std::vector<int>{0}));
  EXPECT_TRUE(queue.pop_batch(4, std::chrono::microseconds(0)).empty());
}

TEST(BoundedQueueTest, PolicyNamesRoundTripAndUnknownOnesListTheValid) {
  for (auto p : {FullPolicy::kBlock, FullPolicy::kDropOldest, FullPolicy::kDropNewest}) {
    EXPECT_EQ(parse_full_policy(to_string(p)), p);
  }
  try {
    parse_full_policy("drop");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("drop-oldest"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace gpulab::infer
