set -e
T='--target Germany=online-retail:embedded#Germany --target France=online-retail:embedded#France --target Spain=online-retail:embedded#Spain --target Belgium=online-retail:embedded#Belgium --target Switzerland=online-retail:embedded#Switzerland --target Portugal=online-retail:embedded#Portugal'
for m in sequence instance; do
  rm -rf /tmp/mode-$m
  /usr/bin/time -f "$m pretrain wall %e s" .venv/bin/prerec pretrain --source "online-retail:embedded#!Germany,France,Spain,Belgium,Switzerland,Portugal" --out /tmp/mode-$m --preset cpu --set mode=$m --set embedding_postprocess=whiten --set epochs=3 --set max_instances_per_epoch=10000 --set lr_decay=1.0 --set patience=10 --set select_on=EIRE,Netherlands --set progress=false
  .venv/bin/prerec evaluate --run /tmp/mode-$m $T --mode zero-shot --json /tmp/mode-$m.json > /dev/null
  .venv/bin/python -c "import json; r=json.load(open('/tmp/mode-$m.json'))['mean']['prerec']; print('$m', {k: round(v,4) for k,v in r.items()})"
done
