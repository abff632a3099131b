#include "pagemap_entry.h"

namespace pagewalk {

void countStates(const uint64_t* entries, size_t count, StateCounts* out) {
  StateCounts c;
  c.pages = count;
  for (size_t i = 0; i < count; i++) {
    const uint64_t e = entries[i];
    const bool present = isPresent(e);
    const bool swapped = isSwapped(e);
    c.present += present;
    c.swapped += swapped;
    c.notPresent += !(present || swapped);
    c.file += (e & kFileOrSharedAnon) != 0;
    c.exclusive += (e & kExclusive) != 0;
    c.softDirty += (e & kSoftDirty) != 0;
    c.uffdWp += (e & kUffdWp) != 0;
    c.guard += (e & kGuard) != 0;
    c.presentWithPfn += present && pfnOf(e) != 0;
  }
  *out = c;
}

size_t firstPopulated(const uint64_t* entries, size_t count) {
  for (size_t i = 0; i < count; i++)
    if ((entries[i] & (kPresent | kSwapped)) != 0) return i;
  return count;
}

size_t extractPfns(const uint64_t* entries, size_t count, uint64_t* out, size_t capacity) {
  size_t found = 0;
  for (size_t i = 0; i < count; i++) {
    const uint64_t e = entries[i];
    if (!isPresent(e)) continue;
    if (found < capacity) out[found] = pfnOf(e);
    found++;
  }
  return found;
}

size_t runLengths(const uint64_t* entries, size_t count, uint64_t mask, uint64_t* triples, size_t capacity) {
  size_t runs = 0;
  size_t i = 0;
  while (i < count) {
    const uint64_t state = entries[i] & mask;
    size_t j = i + 1;
    while (j < count && (entries[j] & mask) == state) j++;
    if (runs < capacity) {
      triples[runs * 3] = i;
      triples[runs * 3 + 1] = j - i;
      triples[runs * 3 + 2] = state;
    }
    runs++;
    i = j;
  }
  return runs;
}

}  // namespace pagewalk
