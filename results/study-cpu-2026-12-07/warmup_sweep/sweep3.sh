
COMMON="--size tiny --tokens runs/study/tokens --tokenizer runs/study/tokenizer/final/tokenizer --games Seaquest,DemonAttack,Assault,Breakout --stage world model.tokenizer.lpips_net=alex world.steps=500 world.critic_start=500 checkpoint.every=500 model.world_model.vmin=-10.0 model.world_model.vmax=10.0 model.world_model.embed_pdrop=0.0 model.world_model.resid_pdrop=0.0 model.world_model.attn_pdrop=0.0"
for v in "nano_warm100 world.schedule=constant_with_warmup world.warmup_steps=100 model.world_model.embed_dim=64 model.world_model.num_layers=2"; do
  set -- $v; name=$1; shift
  python pretrain.py $COMMON --out runs/sweep/$name "$@" > runs/sweep_$name.log 2>&1
  echo "$name $(grep -a 'world_model: total' runs/sweep_$name.log)"
done
