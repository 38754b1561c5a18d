// stephub: the staff CLI (see tools/cli.h).
#include <iostream>

#include "tools/cli.h"

int main(int argc, char** argv) {
  return stephub::cli::Run(std::vector<std::string>(argv + 1, argv + argc),
                           std::cout, std::cerr);
}
