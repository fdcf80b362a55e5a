// All of eval's metric functions in one include: joint errors and physical plausibility, FID,
// retrieval and spread metrics with their protocols, caption metrics and their tokenizer.
#pragma once
#include "vimo/eval/captions.h"
#include "vimo/eval/embedding_metrics.h"
#include "vimo/eval/fid.h"
#include "vimo/eval/metric_protocol.h"
#include "vimo/eval/motion_metrics.h"
#include "vimo/eval/ptb_tokenizer.h"
