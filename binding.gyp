# node-gyp / prebuildify build of the same sources as CMakeLists.txt (csrc/sources.txt, through
# scripts/sources.js). CUDA sources go through the .cu rule when nvcc is on PATH and MAMBAKIT_CUDA
# is not "0"; otherwise the build is CPU-only.
{
  "variables": {
    "with_cuda%": "<!(node -e \"const c=require('child_process');let ok=process.env.MAMBAKIT_CUDA!=='0';try{c.execSync('nvcc --version',{stdio:'ignore'})}catch(e){ok=false}process.stdout.write(ok?'1':'0')\")",
    "cuda_home%": "<!(node -e \"process.stdout.write(process.env.CUDA_HOME||'/usr/local/cuda')\")",
    "cuda_archs%": "<!(node -e \"process.stdout.write(process.env.MAMBAKIT_CUDA_ARCHS_GYP||'-gencode=arch=compute_80,code=sm_80 -gencode=arch=compute_86,code=sm_86 -gencode=arch=compute_89,code=sm_89 -gencode=arch=compute_90,code=sm_90 -gencode=arch=compute_90,code=compute_90')\")"
  },
  "targets": [{
    "target_name": "mambakit",
    "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17"],
    "cflags_cc": ["-std=c++17", "-O3", "-Wall", "-Werror=return-type", "-fexceptions"],
    "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")", "csrc"],
    "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
    "conditions": [
      ["with_cuda==1", {
        "sources": ["<!@(node scripts/sources.js cuda)"],
        "defines": ["MAMBAKIT_CUDA=1"],
        "include_dirs": ["<(cuda_home)/include"],
        "libraries": ["-L<(cuda_home)/lib64", "-lcudart_static", "-ldl", "-lrt", "-lpthread"],
        "rules": [{
          "rule_name": "nvcc",
          "extension": "cu",
          "inputs": ["<(RULE_INPUT_PATH)"],
          "outputs": ["<(INTERMEDIATE_DIR)/<(RULE_INPUT_ROOT).o"],
          "process_outputs_as_sources": 1,
          "action": ["<(cuda_home)/bin/nvcc", "-std=c++17", "-O3", "-Xcompiler", "-fPIC", "-DMAMBAKIT_CUDA=1",
                     "-I", "csrc", "<@(cuda_archs)", "-c", "<(RULE_INPUT_PATH)", "-o", "<@(_outputs)"]
        }]
      }, {
        "sources": ["<!@(node scripts/sources.js cpu)"]
      }]
    ]
  }]
}
