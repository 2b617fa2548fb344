import sys, time, numpy as np, xent
def med(f, k=7):
    ts=[]
    for _ in range(k):
        t=time.perf_counter(); f(); ts.append(time.perf_counter()-t)
    return np.median(ts)
nbytes=int(sys.argv[1]) if len(sys.argv)>1 else 64<<20
for dt in (np.float32, np.float64):
  for C in [int(c) for c in (sys.argv[2].split(",") if len(sys.argv) > 2 else (10, 47, 48, 100, 1000, 32000))]:
    n=nbytes//np.dtype(dt).itemsize//C
    rng=np.random.default_rng(0)
    p=rng.random((n,C)).astype(dt); p/=p.sum(1,keepdims=True)
    q=rng.random((n,C)).astype(dt); q/=q.sum(1,keepdims=True)
    dst=np.empty_like(p); g=np.empty_like(p)
    cp=med(lambda: np.copyto(dst,p))
    r={}
    r['entropy']=med(lambda: xent.entropy(p))/cp
    r['ce fwd']=med(lambda: xent.cross_entropy(p,q))/cp
    r['ce f+b']=med(lambda: xent.cross_entropy(p,q,return_grad=True))/cp
    r['kl f+b']=med(lambda: xent.kl_divergence(p,q,return_grad=True))/cp
    print(np.dtype(dt).name, C, ' '.join(f'{k}={v:.2f}' for k,v in r.items()), flush=True)
